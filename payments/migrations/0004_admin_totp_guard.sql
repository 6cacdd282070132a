-- The admin TOTP guard, one row per admin API key (by its sha256), shared by every api
-- process: a code is accepted once (its time step must be later than the last accepted
-- one, RFC 6238 §5.2), and repeated wrong codes lock the key out for a while.
-- In PostgreSQL, not Redis: the admin path already needs the database (credentials,
-- audit log), so the guard adds no dependency, and a drill that takes Redis down can
-- neither disable replay protection nor take the admin path (or the api) with it.

CREATE TABLE admin_totp_guard (
    key_hash      bytea PRIMARY KEY,
    last_step     bigint NOT NULL DEFAULT 0,      -- last accepted TOTP step (unix time / 30)
    failures      int NOT NULL DEFAULT 0,         -- wrong codes since the last success/lockout
    locked_until  timestamptz                     -- every code refused until then
);
