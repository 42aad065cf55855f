-- Undo 0004: deletes every last-resort coin (protocol v2 before issue 14 knows none).
DELETE FROM coin_inventory WHERE coin_kind = 1;
DROP INDEX coin_inventory_unclaimed;
CREATE INDEX coin_inventory_unclaimed
    ON coin_inventory (user_id, coin_category, record_id)
    WHERE fetched_by IS NULL;
DROP INDEX coin_inventory_last_resort;
ALTER TABLE coin_inventory DROP CONSTRAINT coin_inventory_last_resort_unclaimed;
ALTER TABLE coin_inventory DROP CONSTRAINT coin_inventory_coin_kind_check;
ALTER TABLE coin_inventory ADD CONSTRAINT coin_inventory_coin_kind_check CHECK (coin_kind = 0);
