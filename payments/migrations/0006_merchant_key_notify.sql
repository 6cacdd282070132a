-- A merchant key that is revoked (api_key_hash cleared or rotated) or a merchant that is
-- deleted is announced on channel payments_merchant_keys (payload: the merchant id), so
-- api processes evict their cached key at once (payments/_merchant_keys.py). NOTIFY is
-- transactional: it is delivered when the revoking transaction commits, never before.

CREATE FUNCTION merchant_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('payments_merchant_keys', OLD.id);
    RETURN NULL;
END $$;

CREATE TRIGGER merchants_key_changed AFTER UPDATE OF api_key_hash OR DELETE ON merchants
    FOR EACH ROW EXECUTE FUNCTION merchant_key_changed();
