-- Live feed and e-mail on top of the outbox. A commit that writes outbox rows wakes every
-- listener at once (NOTIFY), each event records the transaction that wrote it, and e-mail keeps
-- its own durable progress: which events it has turned into mails, and each mail's delivery.

-- The id of the transaction that wrote the event (64 bits, never wraps). A websocket's snapshot
-- records which transactions it already shows, so an event it already reflects is not sent on.
-- A default: whatever writes the outbox (the ledger function) needs no change.
ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- The commit wakes listeners with the range of outbox ids the statement wrote ("first:last").
-- NOTIFY is transactional: listeners hear it only once the rows are committed and visible.
-- One notification per statement, not per row: the ledger writes a whole batch in one INSERT.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_id bigint;
    last_id bigint;
BEGIN
    SELECT min(id), max(id) INTO first_id, last_id FROM inserted;
    IF first_id IS NOT NULL THEN
        PERFORM pg_notify('transakt_outbox', first_id || ':' || last_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- E-mail's progress through the outbox, apart from the relay's delivered_at: a mail worker
-- claims the transfer events it has not planned yet (FOR UPDATE SKIP LOCKED, so workers share
-- the load), writes their mails below and sets this, all in one transaction.
ALTER TABLE outbox ADD COLUMN mail_planned_at timestamptz;
-- History from before e-mail existed is not mailed.
UPDATE outbox SET mail_planned_at = created_at;
CREATE INDEX outbox_mail_unplanned ON outbox (id)
    WHERE mail_planned_at IS NULL AND topic IN ('transfer.posted', 'transfer.voided');

-- One row per mail: (event, recipient) can only ever be one mail. Everything the message needs
-- is copied in when it is planned, so every attempt renders the same message. next_attempt_at
-- is both the retry time and the lease of a claimed row: a worker that dies mid-send leaves the
-- row to be claimed again once the lease runs out.
CREATE TABLE mail_deliveries (
    event_id        text NOT NULL,
    recipient       text NOT NULL REFERENCES users (id),
    template        text NOT NULL
                    CHECK (template IN ('sent', 'received', 'deposited', 'withdrawn', 'failed')),
    to_address      text NOT NULL,
    to_name         text NOT NULL,
    counterpart     text,
    transfer        jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (event_id, recipient),
    CONSTRAINT mail_deliveries_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX mail_deliveries_due ON mail_deliveries (next_attempt_at) WHERE status = 'pending';
