-- Refunds: a payee pays a posted payment back, in full or in parts, never more than it in total.
--
-- A refund is an ordinary P2P transfer (payee -> payer, posted, through the payee's wallet
-- actor and the group commit) whose id names the payment it refunds: 'rfd:<original id>:<n>'.
-- Inserting one runs the trigger below in the same transaction: it locks the original (two
-- refunds of one payment are checked one after the other, on any node), checks that the refund
-- goes back the way the payment came, in its currency, and that the refunds not voided stay
-- within the payment's amount, and records the link. The ledger function needs no change, and
-- no code path can write a refund without the check.
CREATE TABLE transfer_refunds (
    refund_id   text PRIMARY KEY REFERENCES transfers (id),
    original_id text NOT NULL REFERENCES transfers (id),
    amount      bigint NOT NULL CHECK (amount > 0)
);
CREATE INDEX transfer_refunds_original ON transfer_refunds (original_id);

CREATE FUNCTION transfers_refund_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    original transfers;
    refunded bigint;
BEGIN
    SELECT * INTO original FROM transfers WHERE id = split_part(NEW.id, ':', 2) FOR SHARE;
    IF NOT FOUND OR original.id LIKE 'rfd:%' OR original.kind <> 'p2p'
       OR original.status <> 'posted' OR original.from_account <> NEW.to_account
       OR original.to_account <> NEW.from_account OR original.currency <> NEW.currency
       OR NEW.kind <> 'p2p' THEN
        RAISE EXCEPTION 'transfer % does not refund a posted payment between these wallets',
            NEW.id USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_of_a_posted_payment';
    END IF;
    -- FOR SHARE above lets concurrent refunds of other payments pass; refunds of this one
    -- serialise on the advisory lock (the row lock alone would let two of them read at once).
    PERFORM pg_advisory_xact_lock(hashtextextended('transakt.refund:' || original.id, 0));
    SELECT coalesce(sum(r.amount), 0) INTO refunded
    FROM transfer_refunds AS r JOIN transfers AS t ON t.id = r.refund_id
    WHERE r.original_id = original.id AND t.status <> 'voided';
    IF refunded + NEW.amount > original.amount THEN
        RAISE EXCEPTION 'refunds of % would exceed its amount', original.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_exceeds_original';
    END IF;
    INSERT INTO transfer_refunds (refund_id, original_id, amount)
    VALUES (NEW.id, original.id, NEW.amount);
    RETURN NULL;
END;
$$;
CREATE TRIGGER transfers_refund_check AFTER INSERT ON transfers
    FOR EACH ROW WHEN (NEW.id LIKE 'rfd:%') EXECUTE FUNCTION transfers_refund_check();
