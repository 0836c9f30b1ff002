-- Every batch locks the accounts it names before it writes anything.
--
-- Until now a batch inserted its transfers first and locked the accounts whose balances move
-- afterwards. Within one node the LedgerWriter never lets two batches hold the same transfer id,
-- but two nodes can: a client retrying a payment against another node, or a load balancer
-- replaying it. Two batches inserting the same new ids in opposite orders each wait for the
-- other's uncommitted row, and PostgreSQL aborts one of them as a deadlock (the client gets 503
-- and must retry).
--
-- Now ledger_commit first locks, in id order and FOR NO KEY UPDATE, every account any of its
-- operations names (both sides of each new transfer, both sides of each transfer it settles),
-- then does the batch's work as before (the function that did it all is renamed ledger_apply;
-- its own lock step finds the locks held). Two batches that share a transfer id share its
-- accounts, so the second waits for the first before writing anything, then finds the id
-- committed and skips it. Locks taken in one order by everyone cannot form a cycle.
ALTER FUNCTION ledger_commit(
    text[], text[], text[], text[], text[], bigint[], text[], text[], text[],
    text[], text[], text[], integer[],
    text[], text[], text[]
) RENAME TO ledger_apply;

CREATE FUNCTION ledger_commit(
    t_id text[], t_kind text[], t_status text[], t_from text[], t_to text[],
    t_amount bigint[], t_currency text[], t_memo text[], t_initiator text[],
    i_user text[], i_key text[], i_hash text[], i_status integer[],
    s_id text[], s_outcome text[], s_reason text[],
    OUT committed_at timestamptz,
    OUT created integer[],
    OUT settled integer[],
    OUT settled_kind text[],
    OUT settled_from text[],
    OUT settled_to text[],
    OUT settled_amount bigint[],
    OUT settled_currency text[],
    OUT settled_memo text[],
    OUT settled_initiator text[],
    OUT settled_created_at timestamptz[],
    OUT wallet_id text[],
    OUT wallet_user text[],
    OUT wallet_currency text[],
    OUT wallet_balance bigint[],
    OUT wallet_pending_in bigint[],
    OUT wallet_pending_out bigint[]
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    named text[] := t_from || t_to;
BEGIN
    -- The accounts of a transfer never change, so reading them for the settlements needs no
    -- lock. Most batches settle nothing.
    IF cardinality(s_id) > 0 THEN
        named := named || ARRAY(
            SELECT x.account
            FROM unnest(s_id) AS s(id)
            JOIN transfers AS t ON t.id = s.id
            CROSS JOIN LATERAL (VALUES (t.from_account), (t.to_account)) AS x(account));
    END IF;
    -- The same form as ledger_apply's own lock step, for the reason given there, and so that
    -- the planner's estimate for the array (a handful of rows) keeps it to index look-ups: a
    -- union of the sources estimated as many rows, and a hash join over every account. An
    -- account named twice is locked once (the second time it is already ours).
    PERFORM 1
    FROM unnest(named) AS m(id) JOIN accounts AS a ON a.id = m.id
    ORDER BY a.id
    FOR NO KEY UPDATE OF a;

    SELECT * INTO committed_at, created, settled, settled_kind, settled_from, settled_to,
                  settled_amount, settled_currency, settled_memo, settled_initiator,
                  settled_created_at, wallet_id, wallet_user, wallet_currency, wallet_balance,
                  wallet_pending_in, wallet_pending_out
    FROM ledger_apply(t_id, t_kind, t_status, t_from, t_to, t_amount, t_currency, t_memo,
                      t_initiator, i_user, i_key, i_hash, i_status, s_id, s_outcome, s_reason);
END;
$$;
