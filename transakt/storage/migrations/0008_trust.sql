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

-- ledger_commit (0007) gains one step between locking the accounts and applying the batch: a
-- keyed transfer first claims its (user, key) in idempotency_keys, with the answer the client
-- gets. A key already there (this transfer's own success, or a refusal recorded for the key)
-- takes the transfer out of the batch: a key that was answered once can never move money
-- afterwards. A concurrent claim of the same key waits on the primary key, then finds it
-- taken. ledger_apply itself is unchanged: it gets the batch without the transfers that lost
-- their claim, and without the records of those that won (they are written already).
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
    named text[] := t_from || t_to;
    kept integer[];
    nothing text[];
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
    PERFORM 1
    FROM unnest(named) AS m(id) JOIN accounts AS a ON a.id = m.id
    ORDER BY a.id
    FOR NO KEY UPDATE OF a;

    IF NOT EXISTS (SELECT FROM unnest(i_user) AS u(id) WHERE u.id IS NOT NULL) THEN
        SELECT * INTO committed_at, created, settled, settled_kind, settled_from, settled_to,
                      settled_amount, settled_currency, settled_memo, settled_initiator,
                      settled_created_at, wallet_id, wallet_user, wallet_currency,
                      wallet_balance, wallet_pending_in, wallet_pending_out
        FROM ledger_apply(t_id, t_kind, t_status, t_from, t_to, t_amount, t_currency, t_memo,
                          t_initiator, i_user, i_key, i_hash, i_status,
                          s_id, s_outcome, s_reason);
        RETURN;
    END IF;

    -- Claim the keys of the first operation with each new transfer id; keep every unkeyed
    -- operation and each keyed one that won its claim, in their order.
    WITH wanted AS (
        SELECT p.pos::integer AS pos
        FROM generate_subscripts(t_id, 1) AS p(pos)
        WHERE i_user[p.pos] IS NOT NULL
          AND NOT EXISTS (SELECT FROM generate_subscripts(t_id, 1) AS e(pos)
                          WHERE e.pos < p.pos AND t_id[e.pos] = t_id[p.pos])
          AND NOT EXISTS (SELECT FROM transfers AS t WHERE t.id = t_id[p.pos])
    ), claimed AS (
        INSERT INTO idempotency_keys AS k (user_id, key, request_hash, status_code, response)
        SELECT i_user[w.pos], i_key[w.pos], i_hash[w.pos], i_status[w.pos],
               ledger_new_transfer_json(t_id[w.pos], t_kind[w.pos], t_status[w.pos],
                                        t_from[w.pos], t_to[w.pos], t_amount[w.pos],
                                        t_currency[w.pos], t_memo[w.pos])
        FROM wanted AS w
        ORDER BY w.pos
        ON CONFLICT DO NOTHING
        RETURNING k.user_id, k.key
    )
    SELECT coalesce(array_agg(p.pos::integer ORDER BY p.pos), '{}')
    INTO kept
    FROM generate_subscripts(t_id, 1) AS p(pos)
    LEFT JOIN claimed AS c ON c.user_id = i_user[p.pos] AND c.key = i_key[p.pos]
    WHERE i_user[p.pos] IS NULL OR c.user_id IS NOT NULL;

    nothing := array_fill(NULL::text, ARRAY[cardinality(kept)]);
    SELECT * INTO committed_at, created, settled, settled_kind, settled_from, settled_to,
                  settled_amount, settled_currency, settled_memo, settled_initiator,
                  settled_created_at, wallet_id, wallet_user, wallet_currency, wallet_balance,
                  wallet_pending_in, wallet_pending_out
    FROM ledger_apply(
        ARRAY(SELECT t_id[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_kind[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_status[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_from[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_to[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_amount[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_currency[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_memo[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        ARRAY(SELECT t_initiator[k] FROM unnest(kept) WITH ORDINALITY AS u(k, n) ORDER BY n),
        nothing, nothing, nothing, array_fill(NULL::integer, ARRAY[cardinality(kept)]),
        s_id, s_outcome, s_reason);
    -- Positions in the batch as the caller sent it.
    created := ARRAY(SELECT kept[c] FROM unnest(created) WITH ORDINALITY AS u(c, n) ORDER BY n);
END;
$$;
