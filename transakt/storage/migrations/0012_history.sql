-- The read side of the ledger: filtered history pages, statements and balance history.
--
-- A migration runs in a transaction, so these indexes are built without CONCURRENTLY, blocking
-- ledger writes while they build. On a large live ledger, build them first with CREATE INDEX
-- CONCURRENTLY under the same names; IF NOT EXISTS then skips them here.
--
-- History pages walk (account, seq) newest first (0001's indexes). A filter on the other party
-- or on the creation time would otherwise read every transfer of the wallet newer than the
-- first match; these indexes start the walk at the matches instead.
CREATE INDEX IF NOT EXISTS transfers_from_counterparty
    ON transfers (from_account, to_account, seq);
CREATE INDEX IF NOT EXISTS transfers_to_counterparty
    ON transfers (to_account, from_account, seq);
CREATE INDEX IF NOT EXISTS transfers_from_created ON transfers (from_account, created_at);
CREATE INDEX IF NOT EXISTS transfers_to_created ON transfers (to_account, created_at);

-- A balance moves only when a transfer posts, at its posted_at: these cover the sums of a
-- period's posted amounts (index-only) and a statement's posted rows in time order.
CREATE INDEX IF NOT EXISTS transfers_from_posted
    ON transfers (from_account, posted_at) INCLUDE (amount)
    WHERE status = 'posted';
CREATE INDEX IF NOT EXISTS transfers_to_posted
    ON transfers (to_account, posted_at) INCLUDE (amount)
    WHERE status = 'posted';

-- The posted balance of an account at the end of each UTC day, filled lazily (by readers, for
-- days no commit can still land in) and contiguously from the day before the account opened.
-- A balance at any instant is then the closing balance of the day before plus the posted sum
-- since, so no read sums an account's whole history. Rows are never updated: a closed day's
-- balance cannot change, since a transfer's posted_at is its commit's start time.
CREATE TABLE balance_days (
    account_id      text NOT NULL REFERENCES accounts (id),
    day             date NOT NULL,
    closing_balance bigint NOT NULL,
    PRIMARY KEY (account_id, day)
);
