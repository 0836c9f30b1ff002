-- The wallet ledger. Safety lives here: even two copies of one wallet actor (a failover race)
-- cannot overdraw a wallet, apply a transfer twice, or mix currencies.

CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    bank_account  text NOT NULL CHECK (length(bank_account) BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- Wallets (owned by a user) and settlement accounts (one per currency: the bank's side of
-- deposits and withdrawals). Per currency, all balances sum to zero because balances only move
-- through transfers, each of which debits one account and credits another by the same amount.
CREATE TABLE accounts (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('wallet', 'settlement')),
    user_id     text REFERENCES users (id),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance     bigint NOT NULL DEFAULT 0,
    pending_in  bigint NOT NULL DEFAULT 0 CHECK (pending_in >= 0),
    pending_out bigint NOT NULL DEFAULT 0 CHECK (pending_out >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_owner CHECK ((kind = 'wallet') = (user_id IS NOT NULL)),
    -- A user's wallet never goes below zero, counting holds; settlement accounts may.
    CONSTRAINT wallet_not_overdrawn CHECK (kind <> 'wallet' OR balance - pending_out >= 0),
    -- Target of the transfers' composite foreign keys: legs must share the transfer's currency.
    CONSTRAINT accounts_id_currency UNIQUE (id, currency)
);
CREATE UNIQUE INDEX accounts_one_wallet_per_currency ON accounts (user_id, currency)
    WHERE kind = 'wallet';
CREATE UNIQUE INDEX accounts_one_settlement_per_currency ON accounts (currency)
    WHERE kind = 'settlement';

-- Transfers are immutable rows keyed by their id (derived from the Idempotency-Key when one is
-- given), so the same request can never be applied twice. Only status moves, and only
-- pending -> posted | voided (enforced by the trigger below).
CREATE TABLE transfers (
    id           text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('p2p', 'deposit', 'withdrawal')),
    status       text NOT NULL CHECK (status IN ('pending', 'posted', 'voided')),
    from_account text NOT NULL,
    to_account   text NOT NULL,
    amount       bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
    currency     text NOT NULL,
    memo         text CHECK (length(memo) <= 500),
    reason       text,
    initiator_id text REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    posted_at    timestamptz,
    settled_at   timestamptz,
    CONSTRAINT transfers_distinct_accounts CHECK (from_account <> to_account),
    CONSTRAINT transfers_from_same_currency FOREIGN KEY (from_account, currency)
        REFERENCES accounts (id, currency),
    CONSTRAINT transfers_to_same_currency FOREIGN KEY (to_account, currency)
        REFERENCES accounts (id, currency),
    CONSTRAINT transfers_posted_has_time CHECK ((status = 'posted') = (posted_at IS NOT NULL)),
    CONSTRAINT transfers_settled_has_time CHECK ((status = 'pending') = (settled_at IS NULL))
);
-- History pages walk these newest first (seq DESC) per side.
CREATE INDEX transfers_from_seq ON transfers (from_account, seq DESC);
CREATE INDEX transfers_to_seq ON transfers (to_account, seq DESC);
CREATE INDEX transfers_pending ON transfers (kind, seq) WHERE status = 'pending';

CREATE FUNCTION transfers_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'transfers are immutable: % cannot be deleted', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status <> 'pending' OR NEW.status = 'pending'
       OR (NEW.id, NEW.seq, NEW.kind, NEW.from_account, NEW.to_account, NEW.amount, NEW.currency,
           NEW.memo, NEW.initiator_id, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.seq, OLD.kind, OLD.from_account, OLD.to_account, OLD.amount, OLD.currency,
           OLD.memo, OLD.initiator_id, OLD.created_at) THEN
        RAISE EXCEPTION 'transfer % may only move from pending to posted or voided', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION transfers_guard();

-- The first response to each (user, Idempotency-Key), written in the same transaction as the
-- change it describes. Only successful requests are recorded: a refused request may be retried
-- with the same key once its cause is fixed.
CREATE TABLE idempotency_keys (
    user_id      text NOT NULL REFERENCES users (id),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash text NOT NULL,
    status_code  integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Transactional outbox: events written in the same transaction as each ledger change and
-- delivered at least once by a relay; consumers deduplicate on event_id.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
