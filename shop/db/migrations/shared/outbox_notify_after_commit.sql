-- The relay is woken by `NOTIFY outbox` sent after the commit, in a transaction of its own
-- (shop/db/unit_of_work.py), no longer by this trigger. A transaction that NOTIFYs takes a lock shared
-- by every database of the server at commit and holds it until its commit record is flushed, so every
-- writing transaction queued behind the others' WAL flushes: with the trigger, one order placement or
-- timer firing at a time reached the disk. A NOTIFY-only transaction writes no WAL and holds that lock
-- for microseconds.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
