-- Anti-drain quota: coins of one owner and tier a requester claimed in the current window.
--
-- Distribution: keyed by the owner's user_id first, co-located with coin_inventory, so a claim
-- (quota row, coin rows, reply row) is one single-shard transaction on Citus.
CREATE TABLE claim_quotas (
    user_id       UUID    NOT NULL,
    requester_id  UUID    NOT NULL,
    coin_category TEXT    NOT NULL CHECK (coin_category IN ('GOLD', 'SILVER', 'BRONZE')),
    window_start  BIGINT  NOT NULL,
    used          INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, requester_id, coin_category)
);

-- Idempotent fetch: the coins one claim handed out, keyed by the client's Idempotency-Key, so a
-- retried fetch (its reply lost to a dropped connection) returns them again instead of claiming
-- more. Kept for the claim grace, then removed by hard-delete.
--
-- Distribution: keyed by the owner's user_id first, co-located with coin_inventory.
CREATE TABLE claim_replies (
    user_id         UUID    NOT NULL,
    requester_id    UUID    NOT NULL,
    idempotency_key BYTEA   NOT NULL CHECK (length(idempotency_key) = 16),
    created_at      BIGINT  NOT NULL,
    key_ids         UUID[]  NOT NULL,
    PRIMARY KEY (user_id, requester_id, idempotency_key)
);
CREATE INDEX claim_replies_age ON claim_replies (created_at);
