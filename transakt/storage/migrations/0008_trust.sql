-- Trust: proof of bank-account control, verified e-mail, revocable sessions, and an
-- Idempotency-Key that keeps its first answer, refusals included.

-- E-mail addresses receive payments only once their holder proved they read mail sent there.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
-- Access tokens carry the version they were issued under; changing the password bumps it, so
-- every token issued before stops working at once.
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0 CHECK (token_version >= 0);
-- The holder of a bank account may back one user only, unless they approve another.
CREATE INDEX users_bank_account ON users (bank_account);

-- A user's bank account is linked once its holder proved control of it: the bank sent two
-- micro-deposits that only the holder can see in their statement, and the user typed them in.
-- Until then money does not move between the wallet and that account.
CREATE TABLE bank_links (
    user_id         text PRIMARY KEY REFERENCES users (id),
    -- The account's currency, as the bank said at signup: the one deposits and withdrawals use.
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL CHECK (status IN ('pending', 'linked', 'failed')),
    -- The bank's verification under way (its id is ours: one per attempt, applied once).
    verification_id text,
    attempts_left   integer CHECK (attempts_left >= 0),
    expires_at      timestamptz,
    started_at      timestamptz,
    linked_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bank_links_linked_has_time CHECK ((status = 'linked') = (linked_at IS NOT NULL))
);
-- Accounts from before this migration were never proved: their holders prove them now.
INSERT INTO bank_links (user_id, status, currency)
SELECT u.id, 'pending',
       coalesce((SELECT a.currency FROM accounts AS a WHERE a.user_id = u.id AND a.kind = 'wallet'
                 ORDER BY a.created_at, a.id LIMIT 1), 'EUR')
FROM users AS u;

-- The holder of a linked account lets another user (by e-mail) link the same account.
CREATE TABLE bank_link_approvals (
    bank_account text NOT NULL,
    email        text NOT NULL CHECK (email = lower(email)),
    approved_by  text NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_account, email)
);

-- The code mailed to verify an address: only its hash is kept, and it allows a few tries.
CREATE TABLE email_verifications (
    user_id       text PRIMARY KEY REFERENCES users (id),
    code_hash     text NOT NULL,
    attempts_left integer NOT NULL CHECK (attempts_left >= 0),
    expires_at    timestamptz NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now()
);

-- Logged-out tokens, until they would have expired anyway. Every node keeps the list in memory
-- and hears of new entries (and of password changes) through NOTIFY.
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE FUNCTION sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'revoked_tokens' THEN
        PERFORM pg_notify('transakt_sessions', 'jti ' || NEW.jti || ' '
                          || extract(epoch FROM NEW.expires_at)::bigint || ' ' || NEW.user_id);
    ELSIF NEW.token_version IS DISTINCT FROM OLD.token_version THEN
        PERFORM pg_notify('transakt_sessions', 'user ' || NEW.id || ' ' || NEW.token_version);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER revoked_tokens_notify AFTER INSERT ON revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION sessions_notify();
CREATE TRIGGER users_token_version_notify AFTER UPDATE OF token_version ON users
    FOR EACH ROW EXECUTE FUNCTION sessions_notify();

-- Mail that is not about a transfer: the e-mail verification code. Its row holds what the
-- message needs in the column the transfer mails keep their transfer in.
ALTER TABLE mail_deliveries DROP CONSTRAINT mail_deliveries_template_check;
ALTER TABLE mail_deliveries ADD CONSTRAINT mail_deliveries_template_check
    CHECK (template IN ('sent', 'received', 'deposited', 'withdrawn', 'failed', 'verify_email'));

-- Every request that reached a decision keeps its answer under its key, refusals included
-- (a refusal is recorded on its own; a success with its transfer, below). Keys are pruned
-- after a retention period.
COMMENT ON TABLE idempotency_keys IS
    'The first answer to each (user, Idempotency-Key) that reached a decision, success or refusal';
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- What ledger_transfer_json gives for a transfer created now with these values: the answer a
-- keyed transfer stores before its row exists.
CREATE FUNCTION ledger_new_transfer_json(
    id text, kind text, status text, from_account text, to_account text, amount bigint,
    currency text, memo text
) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status = 'posted' THEN jsonb_build_object(
            'id', id, 'kind', kind, 'status', status,
            'from_wallet', from_account, 'to_wallet', to_account,
            'amount', amount, 'currency', currency, 'memo', memo,
            'created_at', ledger_rfc3339(now()),
            'posted_at', ledger_rfc3339(now()))
        ELSE jsonb_build_object(
            'id', id, 'kind', kind, 'status', status,
            'from_wallet', from_account, 'to_wallet', to_account,
            'amount', amount, 'currency', currency, 'memo', memo,
            'created_at', ledger_rfc3339(now()))
    END
$$;

-- ledger_apply (ledger_commit before 0007): only steps 1 and 5 differ from 0005; the rest is
-- repeated because a function is replaced whole.
CREATE OR REPLACE FUNCTION ledger_apply(
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

    -- 1. New transfers. A keyed transfer first claims its (user, key) in idempotency_keys,
    -- with the answer the client gets, in the same statement as its insert: a key already
    -- there (this transfer's success, or a refusal recorded for the key) means the transfer is
    -- skipped, so a key that was answered once can never move money afterwards. A concurrent
    -- claim of the same key waits on the primary key and then finds it taken.
    IF cardinality(t_id) > 0 THEN
        WITH wanted AS (
            SELECT *
            FROM unnest(t_id, t_kind, t_status, t_from, t_to, t_amount, t_currency, t_memo,
                        t_initiator, i_user, i_key, i_hash, i_status) WITH ORDINALITY
                 AS w(id, kind, status, from_account, to_account, amount, currency, memo,
                      initiator_id, key_user, key, key_hash, key_status, pos)
        ), firsts AS (
            SELECT * FROM wanted AS w
            WHERE NOT EXISTS (SELECT FROM wanted AS e WHERE e.id = w.id AND e.pos < w.pos)
        ), fresh AS (
            SELECT * FROM firsts AS f
            WHERE NOT EXISTS (SELECT FROM transfers AS t WHERE t.id = f.id)
        ), claimed AS (
            INSERT INTO idempotency_keys AS k (user_id, key, request_hash, status_code, response)
            SELECT f.key_user, f.key, f.key_hash, f.key_status,
                   ledger_new_transfer_json(f.id, f.kind, f.status, f.from_account,
                                            f.to_account, f.amount, f.currency, f.memo)
            FROM fresh AS f
            WHERE f.key_user IS NOT NULL
            ORDER BY f.pos
            ON CONFLICT DO NOTHING
            RETURNING k.user_id, k.key
        ), inserted AS (
            INSERT INTO transfers AS t (id, kind, status, from_account, to_account, amount,
                                        currency, memo, initiator_id, posted_at, settled_at)
            SELECT f.id, f.kind, f.status, f.from_account, f.to_account, f.amount, f.currency,
                   f.memo, f.initiator_id,
                   CASE WHEN f.status = 'posted' THEN now() END,
                   CASE WHEN f.status <> 'pending' THEN now() END
            FROM fresh AS f
            LEFT JOIN claimed AS c ON c.user_id = f.key_user AND c.key = f.key
            WHERE f.key_user IS NULL OR c.user_id IS NOT NULL
            ORDER BY f.pos
            ON CONFLICT (id) DO NOTHING
            RETURNING t.id, t AS rec
        )
        SELECT coalesce(array_agg(f.pos::integer), '{}'),
               coalesce(array_agg(i.rec), '{}'),
               coalesce(array_agg(ledger_transfer_json(i.rec)), '{}')
        INTO created, created_rows, created_json
        FROM inserted AS i JOIN fresh AS f ON f.id = i.id;
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

    -- 5. (Idempotent responses are claimed with the transfers, in step 1.)

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

