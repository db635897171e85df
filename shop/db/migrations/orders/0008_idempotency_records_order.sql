-- One idempotency record per order, and an index behind the foreign key: without it, deleting an
-- order (a retention job, the benchmarks' clean-up) checks the reference by reading every record,
-- once per deleted order (bench/timers.py's clean-up of 27,500 orders took 2.5 minutes of CPU).
CREATE UNIQUE INDEX idempotency_records_order ON idempotency_records (order_id);
