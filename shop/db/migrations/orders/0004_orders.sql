-- Orders, their lines, and the idempotency records that make placement safe to repeat.
CREATE TABLE orders (
    id                uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL,
    status            text        NOT NULL DEFAULT 'PENDING'
                                  CHECK (status IN ('PENDING', 'PAID', 'COMPLETED', 'CANCELLED')),
    stock             text        NOT NULL DEFAULT 'reserving'
                                  CHECK (stock IN ('reserving', 'reserved', 'rejected')),
    cancel_reason     text        CHECK (cancel_reason IN ('customer_request', 'out_of_stock', 'payment_timeout')),
    total_cents       bigint      NOT NULL CHECK (total_cents >= 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_reference text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    paid_at           timestamptz,
    expires_at        timestamptz NOT NULL,
    CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL)),
    CHECK ((status IN ('PAID', 'COMPLETED')) = (paid_at IS NOT NULL))
);
CREATE INDEX orders_user ON orders (user_id, id DESC);

CREATE TABLE order_lines (
    order_id         uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       uuid    NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, product_id)
);

-- One order per (user, Idempotency-Key), whatever happens to Redis: the primary key is the last word.
CREATE TABLE idempotency_records (
    user_id      uuid        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    order_id     uuid        NOT NULL REFERENCES orders (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- The state machine of shop/domain/orders.py, repeated where no code path can go around it.
CREATE FUNCTION orders_status_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
           (OLD.status = 'PENDING' AND NEW.status IN ('PAID', 'CANCELLED'))
        OR (OLD.status = 'PAID' AND NEW.status = 'COMPLETED')) THEN
        RAISE EXCEPTION 'order % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_status_transition BEFORE UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_status_transition();
