-- The coin directory: the seed's coin_inventory table (seed 001) for coin protocol v2.
--
-- Distribution: the primary key and every hot query lead with the owner's user_id, so the table
-- can be distributed by user_id (Citus: SELECT create_distributed_table('coin_inventory',
-- 'user_id')) without changing a query. Times are Unix seconds (BIGINT) because the rules in
-- aqm-core compare them as integers with the caller's `now`; the core never reads a clock.
CREATE TABLE coin_inventory (
    user_id         UUID     NOT NULL,
    key_id          UUID     NOT NULL,
    -- Upload order: claims hand out the oldest first by this, never by wall-clock time.
    record_id       BIGINT   GENERATED ALWAYS AS IDENTITY,
    coin_category   TEXT     NOT NULL CHECK (coin_category IN ('GOLD', 'SILVER', 'BRONZE')),
    coin_kind       SMALLINT NOT NULL CHECK (coin_kind = 0),
    expires_at      BIGINT   NOT NULL,
    public_key_blob BYTEA    NOT NULL,
    signature_blob  BYTEA    NOT NULL,
    uploaded_at     BIGINT   NOT NULL,
    fetched_by      UUID,
    fetched_at      BIGINT,
    PRIMARY KEY (user_id, key_id),
    CHECK ((fetched_by IS NULL) = (fetched_at IS NULL))
);

-- The claim path: an owner's unclaimed coins of one tier, oldest first (FOR UPDATE SKIP LOCKED).
CREATE INDEX coin_inventory_unclaimed
    ON coin_inventory (user_id, coin_category, record_id)
    WHERE fetched_by IS NULL;

-- Background sweeps (admin purge-stale and hard-delete) scan by time across owners; they are not
-- hot queries, and on Citus they run on every shard in parallel.
CREATE INDEX coin_inventory_unclaimed_age ON coin_inventory (uploaded_at) WHERE fetched_by IS NULL;
CREATE INDEX coin_inventory_claimed_age ON coin_inventory (fetched_at) WHERE fetched_by IS NOT NULL;
