-- A claimed mail names the PostgreSQL session of the worker sending it (its backend pid). That
-- session holds an advisory lock on (mail claim class, pid) for as long as it sends (see
-- transakt/storage/mail.py), so a claim lives exactly as long as its worker: when the worker dies
-- its connection closes, the lock goes with it, and any other worker takes the mail at its next
-- poll. next_attempt_at stays the lease, now only a backstop for a worker PostgreSQL still
-- believes alive. Rows claimed by a worker from before this column stay on the lease alone.
ALTER TABLE mail_deliveries ADD COLUMN claimed_by integer;

-- Claims whose holder may have died are few (at most every worker's batch): this finds them
-- without walking every pending mail.
CREATE INDEX mail_deliveries_claimed ON mail_deliveries (claimed_by)
    WHERE status = 'pending' AND claimed_by IS NOT NULL;
