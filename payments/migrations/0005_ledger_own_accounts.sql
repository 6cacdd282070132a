-- A merchant moves money only between its own accounts (payments/README.md, "Security").
-- Before, another merchant's from_account was a 403 and its to_account was credited (or
-- a 422 currency_mismatch told its currency): both told a caller that the id exists.
-- Same signature, same transaction as 0003; only the ownership checks changed.

CREATE OR REPLACE FUNCTION ledger_post(
    p_id text, p_merchant text, p_key text, p_from text, p_to text, p_amount bigint,
    p_currency text, p_status text, p_created timestamptz, p_event_id text, p_event text,
    p_claim_token text, p_status_code int, p_response text, p_audit_payload text,
    p_check boolean, p_outbox boolean, p_audit boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r accounts%ROWTYPE;
    src accounts%ROWTYPE;
    dst accounts%ROWTYPE;
BEGIN
    IF p_check THEN
        -- Row locks in id order: one global lock order, so transfers never deadlock.
        FOR r IN SELECT * FROM accounts WHERE id IN (p_from, p_to) ORDER BY id FOR UPDATE LOOP
            IF r.id = p_from THEN src := r; ELSE dst := r; END IF;
        END LOOP;
        -- Another merchant's account is answered exactly like a missing one (no
        -- existence oracle), in both fields; only an issuance account (the platform's,
        -- where money enters) may credit an account of another merchant.
        IF src.id IS NULL OR src.merchant_id <> p_merchant THEN
            RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'account_not_found',
                DETAIL = 'from_account does not exist', HINT = 'from_account';
        END IF;
        IF dst.id IS NULL OR (dst.merchant_id <> p_merchant AND src.kind <> 'issuance') THEN
            RAISE EXCEPTION USING ERRCODE = 'PT404', MESSAGE = 'account_not_found',
                DETAIL = 'to_account does not exist', HINT = 'to_account';
        END IF;
        IF rtrim(src.currency) <> p_currency THEN
            RAISE EXCEPTION USING ERRCODE = 'PT422', MESSAGE = 'currency_mismatch',
                DETAIL = format('from_account is in %s, not %s', src.currency, p_currency),
                HINT = 'from_account';
        END IF;
        IF rtrim(dst.currency) <> p_currency THEN
            RAISE EXCEPTION USING ERRCODE = 'PT422', MESSAGE = 'currency_mismatch',
                DETAIL = format('to_account is in %s, not %s', dst.currency, p_currency),
                HINT = 'to_account';
        END IF;
        IF src.non_negative AND src.balance < p_amount THEN
            RAISE EXCEPTION USING ERRCODE = 'PT422', MESSAGE = 'insufficient_funds',
                DETAIL = 'from_account has insufficient funds', HINT = 'amount';
        END IF;
    END IF;
    INSERT INTO transfers (id, merchant_id, idempotency_key, from_account, to_account,
                           amount, currency, status, created_at)
        VALUES (p_id, p_merchant, p_key, p_from, p_to, p_amount, p_currency, p_status, p_created);
    INSERT INTO entries (transfer_id, account_id, amount, currency)
        VALUES (p_id, p_from, -p_amount, p_currency), (p_id, p_to, p_amount, p_currency);
    UPDATE accounts SET balance = balance
        + CASE WHEN id = p_from THEN -p_amount ELSE p_amount END
        WHERE id IN (p_from, p_to);
    IF p_outbox THEN
        INSERT INTO outbox (event_id, transfer_id, payload) VALUES (p_event_id, p_id, p_event);
    END IF;
    IF p_claim_token IS NOT NULL THEN
        UPDATE idempotency SET state = 'done', status_code = p_status_code,
                               response_body = p_response
            WHERE merchant_id = p_merchant AND key = p_key AND claim_token = p_claim_token
              AND state = 'in_flight';
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'claim_lost',
                DETAIL = 'the idempotency claim was taken over', HINT = 'Idempotency-Key';
        END IF;
    END IF;
    IF p_audit THEN
        -- Last: the chain-head lock is taken as late as possible.
        RETURN audit_append('transfer', p_id, 'posted', p_audit_payload);
    END IF;
    RETURN 0;
END $$;
