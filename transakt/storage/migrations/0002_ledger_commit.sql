-- Group commit in one round trip. ledger_commit applies a whole batch of ledger operations
-- server-side: called as a single statement outside a transaction block, that statement's own
-- transaction makes the batch atomic, so a batch costs one round trip instead of one per step.

-- A timestamp the way the API shows it (models.rfc3339): UTC, microseconds, a trailing Z.
CREATE FUNCTION ledger_rfc3339(moment timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- A transfer row in the contract's shape (models.Transfer.to_json): memo always (null when
-- absent), reason and posted_at only when set. The first branch is the common case, built
-- without the concatenation.
CREATE FUNCTION ledger_transfer_json(t transfers) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t.reason IS NULL AND t.posted_at IS NOT NULL THEN jsonb_build_object(
            'id', t.id, 'kind', t.kind, 'status', t.status,
            'from_wallet', t.from_account, 'to_wallet', t.to_account,
            'amount', t.amount, 'currency', t.currency, 'memo', t.memo,
            'created_at', ledger_rfc3339(t.created_at),
            'posted_at', ledger_rfc3339(t.posted_at))
        ELSE jsonb_build_object(
            'id', t.id, 'kind', t.kind, 'status', t.status,
            'from_wallet', t.from_account, 'to_wallet', t.to_account,
            'amount', t.amount, 'currency', t.currency, 'memo', t.memo,
            'created_at', ledger_rfc3339(t.created_at))
            || jsonb_strip_nulls(jsonb_build_object(
                'reason', t.reason,
                'posted_at', ledger_rfc3339(t.posted_at)))
    END
$$;

-- One batch: new transfers (t_*, with their idempotency records in i_*, null where none) and
-- settlements of pending transfers (s_*), as parallel arrays. In order:
--   1. insert the new transfers, in operation order; an id already in the ledger, or repeated
--      later in the batch, is skipped (only the first operation with an id takes effect);
--   2. settle the pending transfers named (first settlement of each id only);
--   3. lock every account whose balances move, in id order, FOR NO KEY UPDATE: two writers (or
--      two nodes) then never deadlock, and this lock does not conflict with the KEY SHARE locks
--      the transfers' foreign-key checks take (a plain FOR UPDATE would, and deadlock);
--   4. move those balances in one UPDATE (the accounts' checks refuse an overdraft here);
--   5. record the idempotent response of every created transfer that carries a record;
--   6. write the outbox: transfer.<status> per created or settled transfer, with a
--      deterministic event id, and one balance.changed per wallet whose balances moved.
-- Returned, as compactly as possible: the commit timestamp (now(), the created_at of every new
-- transfer and the posted_at of every one posted here), the 1-based positions of the
-- operations that took effect, the columns of each settled transfer the caller cannot know,
-- and the state of each moved wallet. Its statements keep generic plans: planning them anew for
-- each batch (what the default may settle on, as batch sizes vary) costs more than the batch.
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
    created_rows transfers[] := '{}';
    created_json jsonb[] := '{}';
    settled_rows transfers[] := '{}';
    moved text[];
    moved_balance bigint[];
    moved_pending_in bigint[];
    moved_pending_out bigint[];
BEGIN
    committed_at := now();
    created := '{}';
    settled := '{}';
    wallet_id := '{}';
    wallet_user := '{}';
    wallet_currency := '{}';
    wallet_balance := '{}';
    wallet_pending_in := '{}';
    wallet_pending_out := '{}';

    -- Parallel arrays built by one aggregate pass stay aligned, so no array_agg below needs an
    -- ORDER BY (each would be a sort of its own).

    -- 1. New transfers.
    IF cardinality(t_id) > 0 THEN
        WITH wanted AS (
            SELECT *
            FROM unnest(t_id, t_kind, t_status, t_from, t_to, t_amount, t_currency, t_memo,
                        t_initiator) WITH ORDINALITY
                 AS w(id, kind, status, from_account, to_account, amount, currency, memo,
                      initiator_id, pos)
        ), firsts AS (
            SELECT * FROM wanted AS w
            WHERE NOT EXISTS (SELECT FROM wanted AS e WHERE e.id = w.id AND e.pos < w.pos)
        ), inserted AS (
            INSERT INTO transfers AS t (id, kind, status, from_account, to_account, amount,
                                        currency, memo, initiator_id, posted_at, settled_at)
            SELECT f.id, f.kind, f.status, f.from_account, f.to_account, f.amount, f.currency,
                   f.memo, f.initiator_id,
                   CASE WHEN f.status = 'posted' THEN now() END,
                   CASE WHEN f.status <> 'pending' THEN now() END
            FROM firsts AS f
            ORDER BY f.pos
            ON CONFLICT (id) DO NOTHING
            RETURNING t.id, t AS rec
        )
        SELECT coalesce(array_agg(f.pos::integer), '{}'),
               coalesce(array_agg(i.rec), '{}'),
               coalesce(array_agg(ledger_transfer_json(i.rec)), '{}')
        INTO created, created_rows, created_json
        FROM inserted AS i JOIN firsts AS f ON f.id = i.id;
    END IF;

    -- 2. Settlements (they see the transfers inserted above: this is a new statement).
    IF cardinality(s_id) > 0 THEN
        WITH wanted AS (
            SELECT * FROM unnest(s_id, s_outcome, s_reason) WITH ORDINALITY
                          AS w(id, outcome, reason, pos)
        ), updated AS (
            UPDATE transfers AS t
            SET status = w.outcome,
                reason = w.reason,
                posted_at = CASE WHEN w.outcome = 'posted' THEN now() END,
                settled_at = now()
            FROM wanted AS w
            WHERE t.id = w.id AND t.status = 'pending'
              AND NOT EXISTS (SELECT FROM wanted AS e WHERE e.id = w.id AND e.pos < w.pos)
            RETURNING w.pos, t AS rec
        )
        SELECT coalesce(array_agg(u.pos::integer), '{}'),
               coalesce(array_agg(u.rec), '{}'),
               array_agg((u.rec).kind),
               array_agg((u.rec).from_account),
               array_agg((u.rec).to_account),
               array_agg((u.rec).amount),
               array_agg((u.rec).currency),
               array_agg((u.rec).memo),
               array_agg((u.rec).initiator_id),
               array_agg((u.rec).created_at)
        INTO settled, settled_rows, settled_kind, settled_from, settled_to, settled_amount,
             settled_currency, settled_memo, settled_initiator, settled_created_at
        FROM updated AS u;
    END IF;

    -- 3. and 4. The balance deltas per account: a posted transfer moves the balances, a new
    -- pending one holds its amount on both sides, settling releases the hold.
    SELECT array_agg(d.account), array_agg(d.balance), array_agg(d.pending_in),
           array_agg(d.pending_out)
    INTO moved, moved_balance, moved_pending_in, moved_pending_out
    FROM (
        SELECT leg.account,
               sum(leg.balance)::bigint AS balance,
               sum(leg.pending_in)::bigint AS pending_in,
               sum(leg.pending_out)::bigint AS pending_out
        FROM (
            SELECT c.from_account, c.to_account, c.status, c.amount,
                   CASE WHEN c.status = 'pending' THEN c.amount ELSE 0 END AS hold
            FROM unnest(created_rows) AS c
            UNION ALL
            SELECT s.from_account, s.to_account, s.status, s.amount, -s.amount
            FROM unnest(settled_rows) AS s
        ) AS x
        CROSS JOIN LATERAL (VALUES
            (x.from_account, CASE WHEN x.status = 'posted' THEN -x.amount ELSE 0 END,
             0::bigint, x.hold),
            (x.to_account, CASE WHEN x.status = 'posted' THEN x.amount ELSE 0 END,
             x.hold, 0::bigint)
        ) AS leg(account, balance, pending_in, pending_out)
        GROUP BY leg.account
        HAVING (sum(leg.balance), sum(leg.pending_in), sum(leg.pending_out)) <> (0, 0, 0)
    ) AS d;

    IF cardinality(moved) > 0 THEN
        -- A join, not "id = ANY (moved)": when a lock wait ends on a row another writer has
        -- updated, the row is rechecked by rescanning, and an array key would re-sort the
        -- whole array for every such row.
        PERFORM 1
        FROM unnest(moved) AS m(id) JOIN accounts AS a ON a.id = m.id
        ORDER BY a.id
        FOR NO KEY UPDATE OF a;

        WITH updated AS (
            UPDATE accounts AS a
            SET balance = a.balance + d.balance,
                pending_in = a.pending_in + d.pending_in,
                pending_out = a.pending_out + d.pending_out
            FROM unnest(moved, moved_balance, moved_pending_in, moved_pending_out)
                 AS d(id, balance, pending_in, pending_out)
            WHERE a.id = d.id
            RETURNING a.id, a.kind, a.user_id, a.currency, a.balance, a.pending_in, a.pending_out
        )
        SELECT coalesce(array_agg(u.id), '{}'),
               coalesce(array_agg(u.user_id), '{}'),
               coalesce(array_agg(u.currency), '{}'),
               coalesce(array_agg(u.balance), '{}'),
               coalesce(array_agg(u.pending_in), '{}'),
               coalesce(array_agg(u.pending_out), '{}')
        INTO wallet_id, wallet_user, wallet_currency, wallet_balance, wallet_pending_in,
             wallet_pending_out
        FROM updated AS u
        WHERE u.kind = 'wallet';
    END IF;

    -- 5. Idempotent responses, only for transfers created here that carry a record.
    IF EXISTS (SELECT FROM unnest(created) AS p(pos) WHERE i_user[p.pos] IS NOT NULL) THEN
        INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response)
        SELECT i_user[p.pos], i_key[p.pos], i_hash[p.pos], i_status[p.pos], created_json[p.k]
        FROM unnest(created) WITH ORDINALITY AS p(pos, k)
        WHERE i_user[p.pos] IS NOT NULL
        ON CONFLICT DO NOTHING;
    END IF;

    -- 6. The outbox, in one INSERT (one statement: its triggers see the batch at once):
    -- created transfers, then settled ones, each in ledger order, then the wallets.
    IF cardinality(created_rows) + cardinality(settled_rows) > 0 THEN
        INSERT INTO outbox (event_id, topic, payload)
        SELECT e.event_id, e.topic, e.payload
        FROM (
            SELECT x.grp, x.ord,
                   (x.rec).id || ':' || (x.rec).status AS event_id,
                   'transfer.' || (x.rec).status AS topic,
                   jsonb_build_object(
                       'transfer', x.body,
                       'from_user', (SELECT a.user_id FROM accounts AS a
                                     WHERE a.id = (x.rec).from_account),
                       'to_user', (SELECT a.user_id FROM accounts AS a
                                   WHERE a.id = (x.rec).to_account)) AS payload
            FROM (
                SELECT 1 AS grp, (created_rows[k]).seq AS ord, created_rows[k] AS rec,
                       created_json[k] AS body
                FROM generate_subscripts(created_rows, 1) AS k
                UNION ALL
                SELECT 2, (settled_rows[k]).seq, settled_rows[k],
                       ledger_transfer_json(settled_rows[k])
                FROM generate_subscripts(settled_rows, 1) AS k
            ) AS x
            UNION ALL
            SELECT 3, w.ord,
                   'balance:' || replace(gen_random_uuid()::text, '-', ''),
                   'balance.changed',
                   jsonb_build_object('wallet', jsonb_build_object(
                       'id', w.id,
                       'user_id', w.user_id,
                       'currency', w.currency,
                       'balance', w.balance,
                       'pending_in', w.pending_in,
                       'pending_out', w.pending_out,
                       'available', w.balance - w.pending_out))
            FROM unnest(wallet_id, wallet_user, wallet_currency, wallet_balance,
                        wallet_pending_in, wallet_pending_out) WITH ORDINALITY
                 AS w(id, user_id, currency, balance, pending_in, pending_out, ord)
        ) AS e
        ORDER BY e.grp, e.ord
        ON CONFLICT (event_id) DO NOTHING;
    END IF;
END;
$$;
