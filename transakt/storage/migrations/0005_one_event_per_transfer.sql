-- One outbox event per transfer. Until now each batch also wrote one balance.changed row per
-- wallet it moved: per payment, three outbox rows to insert, index, notify, read back and mark
-- delivered. Each transfer event now carries the moved wallets' states itself (payload.wallets,
-- the same objects balance.changed held), and the live feed sends its balance updates from
-- those. balance.changed rows written before this migration are still understood by readers.
-- Only step 6 differs from 0002; the rest is repeated because a function is replaced whole.

CREATE OR REPLACE FUNCTION ledger_commit(
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
    moved_wallets jsonb;
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

    -- 6. The outbox: one event per created or settled transfer (created ones first, each group
    -- in ledger order), in one INSERT so its trigger sees the batch at once. Each event carries
    -- the state, after this batch, of the payer's and payee's wallets whose balances moved: the
    -- live feed's balance updates ride along instead of being rows of their own (three outbox
    -- rows per payment were a third of the ledger's database time, and the relay read each back).
    IF cardinality(created_rows) + cardinality(settled_rows) > 0 THEN
        SELECT coalesce(jsonb_object_agg(w.id, jsonb_build_object(
                   'id', w.id,
                   'user_id', w.user_id,
                   'currency', w.currency,
                   'balance', w.balance,
                   'pending_in', w.pending_in,
                   'pending_out', w.pending_out,
                   'available', w.balance - w.pending_out)), '{}')
        INTO moved_wallets
        FROM unnest(wallet_id, wallet_user, wallet_currency, wallet_balance,
                    wallet_pending_in, wallet_pending_out)
             AS w(id, user_id, currency, balance, pending_in, pending_out);

        INSERT INTO outbox (event_id, topic, payload)
        SELECT (x.rec).id || ':' || (x.rec).status,
               'transfer.' || (x.rec).status,
               jsonb_build_object(
                   'transfer', x.body,
                   -- A wallet whose moves cancel out within the batch is not among the moved.
                   'from_user', coalesce(m.payer ->> 'user_id',
                                         (SELECT a.user_id FROM accounts AS a
                                          WHERE a.id = (x.rec).from_account)),
                   'to_user', coalesce(m.payee ->> 'user_id',
                                       (SELECT a.user_id FROM accounts AS a
                                        WHERE a.id = (x.rec).to_account)),
                   'wallets', CASE
                       WHEN m.payer IS NULL AND m.payee IS NULL THEN '[]'::jsonb
                       WHEN m.payee IS NULL THEN jsonb_build_array(m.payer)
                       WHEN m.payer IS NULL THEN jsonb_build_array(m.payee)
                       ELSE jsonb_build_array(m.payer, m.payee)
                   END)
        FROM (
            SELECT 1 AS grp, (created_rows[k]).seq AS ord, created_rows[k] AS rec,
                   created_json[k] AS body
            FROM generate_subscripts(created_rows, 1) AS k
            UNION ALL
            SELECT 2, (settled_rows[k]).seq, settled_rows[k], ledger_transfer_json(settled_rows[k])
            FROM generate_subscripts(settled_rows, 1) AS k
        ) AS x
        CROSS JOIN LATERAL (
            SELECT moved_wallets -> (x.rec).from_account AS payer,
                   moved_wallets -> (x.rec).to_account AS payee
        ) AS m
        ORDER BY x.grp, x.ord
        ON CONFLICT (event_id) DO NOTHING;
    END IF;
END;
$$;
