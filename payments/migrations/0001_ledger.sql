-- Ledger, idempotency, outbox, projections. Applied once by `python -m payments.migrate`.

CREATE TABLE merchants (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    api_key_hash  bytea UNIQUE,               -- sha256 of a 256-bit random key; NULL = no API access
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_credentials (
    id               int PRIMARY KEY CHECK (id = 1),
    api_key_hash     bytea NOT NULL,
    totp_secret_enc  bytea NOT NULL           -- AES-GCM under PAYMENTS_ENCRYPTION_KEY
);

CREATE TABLE accounts (
    id            text PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants(id),
    currency      char(3) NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('customer', 'issuance')),
    non_negative  boolean NOT NULL,
    balance       bigint NOT NULL DEFAULT 0,
    holder_enc    bytea,                      -- AES-GCM(holder JSON), never stored in clear
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_merchant ON accounts (merchant_id);

CREATE TABLE transfers (
    id               text PRIMARY KEY,
    merchant_id      text NOT NULL REFERENCES merchants(id),
    idempotency_key  text,
    from_account     text NOT NULL REFERENCES accounts(id),
    to_account       text NOT NULL REFERENCES accounts(id),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         char(3) NOT NULL,
    status           text NOT NULL,            -- posted | review
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (from_account <> to_account)
);

CREATE TABLE entries (
    id           bigserial PRIMARY KEY,
    transfer_id  text NOT NULL REFERENCES transfers(id),
    account_id   text NOT NULL REFERENCES accounts(id),
    amount       bigint NOT NULL,             -- signed: debit < 0 < credit
    currency     char(3) NOT NULL
);
CREATE INDEX entries_account ON entries (account_id, id);
CREATE INDEX entries_transfer ON entries (transfer_id);

-- Entries of one transfer must sum to zero; checked at commit so both legs can be
-- inserted first.
CREATE FUNCTION entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT coalesce(sum(amount), 0) FROM entries WHERE transfer_id = NEW.transfer_id) <> 0 THEN
        RAISE EXCEPTION 'entries of transfer % do not sum to zero', NEW.transfer_id;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entries_balanced();

CREATE TABLE idempotency (
    merchant_id    text NOT NULL,
    key            text NOT NULL,
    request_hash   text NOT NULL,
    state          text NOT NULL CHECK (state IN ('in_flight', 'done')),
    claim_token    text,                      -- who holds the in-flight claim
    status_code    int,
    response_body  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz NOT NULL,      -- an in-flight claim past this may be taken over
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, key)
);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    transfer_id   text NOT NULL REFERENCES transfers(id),
    payload       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    stream_id     text
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    event_id      text PRIMARY KEY,
    consumer      text NOT NULL,
    stream_id     text,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projections (
    account_id  text PRIMARY KEY,
    balance     bigint NOT NULL
);
