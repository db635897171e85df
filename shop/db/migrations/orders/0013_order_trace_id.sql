-- The trace the order was placed in (32 hex digits), written by the placement's INSERT from the
-- place-order actor's span: an admin's view of the order's journey asks the trace store for it.
-- NULL when tracing was off at placement, and for orders placed before this column.
ALTER TABLE orders ADD COLUMN trace_id text;
