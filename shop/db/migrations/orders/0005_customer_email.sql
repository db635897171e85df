-- Where to write to the customer about this order (from their access token at placement), so the
-- order side can email them without reading the auth database.
ALTER TABLE orders ADD COLUMN customer_email text;
