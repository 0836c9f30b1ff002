-- Spend limits and fraud review.
--
-- A wallet's owner caps what it pays out to other wallets per UTC day and per UTC month. The
-- WalletActor enforces the caps in memory (it loads them, and what the wallet spent in the
-- current windows, when it loads its state), so no query is added to a payment.
CREATE TABLE wallet_limits (
    wallet_id  text PRIMARY KEY REFERENCES accounts (id),
    -- Minor units of the wallet's currency; NULL means no limit, 0 means no payments at all.
    daily      bigint CHECK (daily >= 0 AND daily <= 1000000000000000),
    monthly    bigint CHECK (monthly >= 0 AND monthly <= 1000000000000000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Operators review held payments. A table of its own rather than a column on users: being an
-- operator is a grant with a history (who granted it, when), and the users table stays as it is.
CREATE TABLE operators (
    user_id    text PRIMARY KEY REFERENCES users (id),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text NOT NULL CHECK (length(granted_by) BETWEEN 1 AND 200)
);

-- A payment that tripped a review rule is a *pending* P2P transfer (its amount held from the
-- payer like any hold); this row says why, and records the operator's decision. The row is
-- written before the transfer is committed, so a held transfer always finds its reasons; a row
-- whose transfer never came to be (the payment was then refused) is never shown, since the
-- queue is read from the pending transfers. The decision is final: it moves only from 'open'.
CREATE TABLE transfer_reviews (
    transfer_id text PRIMARY KEY,
    wallet_id   text NOT NULL,
    reasons     text[] NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'rejected')),
    decided_by  text REFERENCES users (id),
    decided_at  timestamptz,
    note        text CHECK (length(note) BETWEEN 1 AND 1000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfer_reviews_decided
        CHECK ((status = 'open') = (decided_at IS NULL)
               AND (status = 'open') = (decided_by IS NULL)
               AND (status = 'open') = (note IS NULL))
);

CREATE FUNCTION transfer_reviews_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' THEN
        RAISE EXCEPTION 'the review of % was decided already', OLD.transfer_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER transfer_reviews_final BEFORE UPDATE ON transfer_reviews
    FOR EACH ROW EXECUTE FUNCTION transfer_reviews_final();

-- A held payment is mailed to its payer ("under review"): pending transfer events now pass
-- through mail planning too (a pending deposit or withdrawal means no mail and is only marked).
ALTER TABLE mail_deliveries DROP CONSTRAINT mail_deliveries_template_check;
ALTER TABLE mail_deliveries ADD CONSTRAINT mail_deliveries_template_check
    CHECK (template IN ('sent', 'received', 'deposited', 'withdrawn', 'failed', 'verify_email',
                        'held'));
-- Pending events from before this migration were never meant to be mailed.
UPDATE outbox SET mail_planned_at = created_at
WHERE mail_planned_at IS NULL AND topic = 'transfer.pending';
DROP INDEX outbox_mail_unplanned;
CREATE INDEX outbox_mail_unplanned ON outbox (id)
    WHERE mail_planned_at IS NULL
      AND topic IN ('transfer.posted', 'transfer.voided', 'transfer.pending');
