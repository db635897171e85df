-- The catalog is event-sourced: product_events is the truth, append-only; `products` is a
-- projection of it, updated in the same transaction as each event and rebuildable by
-- `shop replay products`.
CREATE TABLE product_events (
    seq         bigserial   PRIMARY KEY,  -- the global order of every catalog event
    event_id    uuid        NOT NULL UNIQUE,
    product_id  uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- Optimistic concurrency: two writers that read the same version cannot both append.
    UNIQUE (product_id, version)
);

CREATE FUNCTION product_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'product_events is append-only';
END
$$;
CREATE TRIGGER product_events_append_only BEFORE UPDATE OR DELETE ON product_events
    FOR EACH ROW EXECUTE FUNCTION product_events_append_only();

CREATE TABLE products (
    id              uuid        PRIMARY KEY,
    sku             text        NOT NULL UNIQUE,
    name            text        NOT NULL,
    description     text        NOT NULL,
    price_cents     integer     NOT NULL CHECK (price_cents >= 0),
    currency        text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Sellable stock; reserved stock is held for orders and is not in stock_available.
    stock_available integer     NOT NULL CHECK (stock_available >= 0),
    stock_reserved  integer     NOT NULL CHECK (stock_reserved >= 0),
    version         integer     NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
