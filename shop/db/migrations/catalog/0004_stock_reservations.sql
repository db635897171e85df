-- Which order holds which units: one row per order and product, so a redelivered order.created
-- can never reserve twice, and a release or sale knows exactly what to give back or take out.
CREATE TABLE stock_reservations (
    order_id   uuid        NOT NULL,
    product_id uuid        NOT NULL REFERENCES products (id),
    quantity   integer     NOT NULL CHECK (quantity > 0),
    state      text        NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved', 'released', 'sold')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);

-- Orders cancelled before their reservation was made: order.cancelled and order.created travel on
-- different topics, so the cancellation can arrive first; the reservation must then never happen.
CREATE TABLE cancelled_orders (
    order_id     uuid        PRIMARY KEY,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);
