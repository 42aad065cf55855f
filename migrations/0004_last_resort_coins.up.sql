-- Last-resort coins (kind 1, docs/protocol.md): at most one live one per owner and tier, handed
-- out (never claimed) only when the tier's one-time coins are gone.
--
-- They stay in coin_inventory with coin_kind = 1 rather than in a table of their own: the
-- primary key (user_id, key_id) then keeps a key id unique across both kinds, so an upload stays
-- idempotent on (owner, key id) and a claim's reply record (claim_replies.key_ids) names either
-- kind, with one query for each. The partial unique index below is the database's own guard of
-- "one per owner and tier"; which coin that is (the newer replaces the older) is decided by
-- aqm_core::directory::last_resort_replaces in the upload transaction, not here.
--
-- Distribution: the unique index leads with user_id, the distribution key, as Citus requires.
ALTER TABLE coin_inventory DROP CONSTRAINT coin_inventory_coin_kind_check;
ALTER TABLE coin_inventory ADD CONSTRAINT coin_inventory_coin_kind_check CHECK (coin_kind IN (0, 1));
-- A last-resort coin is never claimed: it is handed out to every requester that needs it.
ALTER TABLE coin_inventory ADD CONSTRAINT coin_inventory_last_resort_unclaimed
    CHECK (coin_kind = 0 OR fetched_by IS NULL);

CREATE UNIQUE INDEX coin_inventory_last_resort ON coin_inventory (user_id, coin_category) WHERE coin_kind = 1;

-- The claim path reads one-time coins only; the index says so, so last-resort rows never sit in it.
DROP INDEX coin_inventory_unclaimed;
CREATE INDEX coin_inventory_unclaimed
    ON coin_inventory (user_id, coin_category, record_id)
    WHERE fetched_by IS NULL AND coin_kind = 0;
