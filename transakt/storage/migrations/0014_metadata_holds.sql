-- Metadata on transfers, and holds that expire.
--
-- Both live beside the ledger rather than in it: a transfer's metadata (a small JSON object
-- the client attaches) and a hold's expiry are written by ledger_commit_with, which runs
-- ledger_commit unchanged and then records them for the transfers it created, in the same
-- statement and so the same transaction. Payments without either go through ledger_commit
-- itself and pay nothing for this.
CREATE TABLE transfer_attributes (
    transfer_id text PRIMARY KEY REFERENCES transfers (id),
    metadata    jsonb NOT NULL
        CONSTRAINT transfer_metadata_is_a_small_object
        CHECK (jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 4096)
);
-- Filters on metadata key/value pairs (metadata @> '{"order": "A-17"}') use it.
CREATE INDEX transfer_attributes_metadata ON transfer_attributes USING gin (metadata jsonb_path_ops);

-- A hold (a pending P2P transfer) that has not been posted or voided by expires_at is voided
-- by the expiry sweeper. The row goes once the hold is settled: what the sweeper reads is
-- only what may still be due.
CREATE TABLE hold_expiries (
    transfer_id text PRIMARY KEY REFERENCES transfers (id),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX hold_expiries_due ON hold_expiries (expires_at);

CREATE FUNCTION ledger_commit_with(
    t_id text[], t_kind text[], t_status text[], t_from text[], t_to text[],
    t_amount bigint[], t_currency text[], t_memo text[], t_initiator text[],
    i_user text[], i_key text[], i_hash text[], i_status integer[],
    s_id text[], s_outcome text[], s_reason text[],
    t_metadata jsonb[], t_expires timestamptz[],
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
BEGIN
    SELECT * INTO committed_at, created, settled, settled_kind, settled_from, settled_to,
                  settled_amount, settled_currency, settled_memo, settled_initiator,
                  settled_created_at, wallet_id, wallet_user, wallet_currency, wallet_balance,
                  wallet_pending_in, wallet_pending_out
    FROM ledger_commit(t_id, t_kind, t_status, t_from, t_to, t_amount, t_currency, t_memo,
                       t_initiator, i_user, i_key, i_hash, i_status, s_id, s_outcome, s_reason);

    INSERT INTO transfer_attributes (transfer_id, metadata)
    SELECT t_id[p.pos], t_metadata[p.pos]
    FROM unnest(created) AS p(pos)
    WHERE t_metadata[p.pos] IS NOT NULL;

    INSERT INTO hold_expiries (transfer_id, expires_at)
    SELECT t_id[p.pos], t_expires[p.pos]
    FROM unnest(created) AS p(pos)
    WHERE t_expires[p.pos] IS NOT NULL;

    -- A keyed transfer's stored answer is the transfer as the client was answered: with them.
    UPDATE idempotency_keys AS k
    SET response = k.response || jsonb_strip_nulls(jsonb_build_object(
            'metadata', t_metadata[p.pos],
            'expires_at', ledger_rfc3339(t_expires[p.pos])))
    FROM unnest(created) AS p(pos)
    WHERE i_user[p.pos] IS NOT NULL
      AND (t_metadata[p.pos] IS NOT NULL OR t_expires[p.pos] IS NOT NULL)
      AND k.user_id = i_user[p.pos] AND k.key = i_key[p.pos];
END;
$$;

-- Posting a hold for less than its amount voids it and creates its posting transfer, id
-- '<hold id>:post', in one transaction. The trigger makes that posting transfer impossible
-- unless the hold is pending in that very transaction (it locks the hold): a hold posted in
-- full, voided, or expired meanwhile refuses it, and one hold has at most one posting.
CREATE FUNCTION transfers_hold_post_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hold transfers;
BEGIN
    SELECT * INTO hold FROM transfers WHERE id = split_part(NEW.id, ':', 1) FOR UPDATE;
    IF NOT FOUND OR hold.status <> 'pending' OR hold.kind <> 'p2p'
       OR NEW.amount > hold.amount OR NEW.from_account <> hold.from_account
       OR NEW.to_account <> hold.to_account OR NEW.currency <> hold.currency THEN
        RAISE EXCEPTION 'hold % is not pending (or the posting does not match it)', hold.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'hold_not_pending';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER transfers_hold_post_check AFTER INSERT ON transfers
    FOR EACH ROW WHEN (NEW.id LIKE 'hld\_%:post') EXECUTE FUNCTION transfers_hold_post_check();
