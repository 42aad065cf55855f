-- Registered identities (POST /v1/users, proof of possession checked by aqm-core before the row
-- is written) and the hashes of their API tokens.
--
-- Distribution: both tables are keyed by user_id first (Citus: distribute both by user_id,
-- co-located with coin_inventory, so an upload's identity check and insert stay on one shard).
CREATE TABLE identities (
    user_id       UUID   PRIMARY KEY,
    ed25519_pk    BYTEA  NOT NULL CHECK (length(ed25519_pk) = 32),
    mldsa65_pk    BYTEA  NOT NULL CHECK (length(mldsa65_pk) = 1952),
    registered_at BIGINT NOT NULL
);

-- A token is `<user_id>.<secret>`; only SHA-256(secret) is stored, so a leaked database does not
-- leak working tokens, and the lookup is by user_id (the distribution key), never by hash alone.
CREATE TABLE api_tokens (
    user_id    UUID   NOT NULL REFERENCES identities (user_id) ON DELETE CASCADE,
    token_hash BYTEA  NOT NULL CHECK (length(token_hash) = 32),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, token_hash)
);
