-- A placement the gateway answered 202 for is followed at GET /api/v1/orders/placements/{id}. The id
-- is derived from (customer, Idempotency-Key) by the gateway, so every retry with one key points at
-- the same place, whichever of them made the order.
ALTER TABLE idempotency_records ADD COLUMN placement_id uuid;
CREATE UNIQUE INDEX idempotency_records_placement ON idempotency_records (placement_id);

-- The last refusal of a placement (an unknown product, too many unpaid orders): what a followed
-- placement answers while no order exists for it. Not final: the same key may be placed again and
-- succeed (the price feed may not have delivered a new product yet), and then the order is the answer.
CREATE TABLE placement_refusals (
    placement_id uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    code         text        NOT NULL,
    message      text        NOT NULL,
    refused_at   timestamptz NOT NULL
);

-- What one customer holds unpaid, read at every placement without reading all of their orders.
CREATE INDEX orders_pending_by_user ON orders (user_id) WHERE status = 'PENDING';
