-- The event stream: every committed outbox event published once to the message broker, by
-- whichever process holds the publisher's advisory lock (transakt/rabbitmq/events.py).
--
-- Ids are taken when a batch is written and become visible when it commits, so they commit out
-- of order: a cursor on the id alone would skip an event committed after a higher id was read.
-- The publisher reads instead in (xid, id) order, and only events whose writing transaction is
-- older than the reading snapshot's xmin: every transaction below xmin has finished, so each
-- such row is visible already and no row can still appear below the cursor.

-- How far each stream (one per exchange) has got: every event at or before (xid, id) has been
-- published and confirmed. attempted_* is the furthest position ever sent, written before the
-- publish: whatever lies between the two was sent once already, and is counted as republished.
CREATE TABLE event_publisher_cursor (
    stream        text PRIMARY KEY,
    xid           xid8 NOT NULL,
    id            bigint NOT NULL,
    attempted_xid xid8 NOT NULL,
    attempted_id  bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_publisher_cursor_attempted_ahead
        CHECK ((attempted_xid, attempted_id) >= (xid, id))
);

-- The publisher's reading order: a range scan from its cursor, however long the outbox.
CREATE INDEX outbox_stream_order ON outbox (xid, id);
