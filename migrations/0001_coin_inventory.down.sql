DROP TABLE coin_inventory;
