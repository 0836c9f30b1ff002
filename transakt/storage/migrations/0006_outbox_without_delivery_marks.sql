-- The outbox is a log its readers keep their own place in. Relays used to mark every event
-- delivered: an UPDATE per event that rewrote the row (its index made it a non-HOT update)
-- and was about a third of the ledger's write-ahead log under load, for a mark no reader
-- needed. Relays now publish what each commit's NOTIFY announces and catch up by id; mail has
-- its own progress (mail_planned_at, mail_deliveries).
DROP INDEX outbox_undelivered;
ALTER TABLE outbox DROP COLUMN delivered_at;
