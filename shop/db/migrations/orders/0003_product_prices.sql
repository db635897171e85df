-- The order side's copy of each product's price, fed by the price-feed stream agent from
-- product.created / product.updated (the orders context never reads the catalog's tables).
-- `version` is the product version the row reflects: an event is applied only when it is newer,
-- so a replayed old event never overwrites a newer price.
CREATE TABLE product_prices (
    product_id  uuid        PRIMARY KEY,
    sku         text,
    name        text,
    price_cents integer     NOT NULL CHECK (price_cents >= 0),
    currency    text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
