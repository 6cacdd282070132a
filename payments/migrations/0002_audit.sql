-- Append-only, hash-chained audit log. hash = sha256(prev_hash|seq|entity|entity_id|
-- action|payload) in hex; payments.audit.chain_hash is the same function in Python.

CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    action      text NOT NULL,
    payload     text NOT NULL,                -- canonical JSON (sorted keys, compact)
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The chain head: one row, locked FOR UPDATE by every append, which serializes appends
-- and keeps seq gap-free (a rolled-back append rolls back its head update too).
CREATE TABLE audit_head (
    id    int PRIMARY KEY CHECK (id = 1),
    seq   bigint NOT NULL,
    hash  text NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, repeat('0', 64));

CREATE FUNCTION audit_hash(prev text, seq bigint, entity text, entity_id text,
                           action text, payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        prev || '|' || seq::text || '|' || entity || '|' || entity_id || '|' ||
        action || '|' || payload, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_append(p_entity text, p_entity_id text, p_action text, p_payload text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
    new_hash text;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id = 1 FOR UPDATE;
    new_hash := audit_hash(head.hash, head.seq + 1, p_entity, p_entity_id, p_action, p_payload);
    INSERT INTO audit_log (seq, entity, entity_id, action, payload, prev_hash, hash)
        VALUES (head.seq + 1, p_entity, p_entity_id, p_action, p_payload, head.hash, new_hash);
    UPDATE audit_head SET seq = head.seq + 1, hash = new_hash WHERE id = 1;
    RETURN head.seq + 1;
END $$;

CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
