-- durable SQLite schema: history integrity. Each event carries a checksum chained to the one
-- before it in its run: crc32(body, checksum of the previous row), starting from a value of the
-- run's own (durable._stores._integrity); the store computes it in the transaction that writes
-- the row, and every read checks it. Rows written before this migration keep NULL: they are
-- read as they are (checked for their seq and decoding only) and the chain starts again at the
-- next row that has one; nothing is rewritten, so the upgrade is instant.

ALTER TABLE events ADD COLUMN checksum INTEGER;  -- CRC-32, 0 .. 2^32 - 1; NULL: written before
