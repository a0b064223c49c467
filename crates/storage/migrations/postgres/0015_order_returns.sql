-- Returns: shipped units a customer sends back. A return is requested for some shipped units,
-- then received: the units that came back, each line put back in stock or not. Expand only:
-- the new columns have defaults, so the previous release's statements work unchanged.

-- Units of the line on a return asked for and not yet received.
ALTER TABLE order_lines ADD COLUMN return_requested bigint NOT NULL DEFAULT 0
    CHECK (return_requested >= 0);
-- Units of the line received back (they leave the order's total).
ALTER TABLE order_lines ADD COLUMN returned bigint NOT NULL DEFAULT 0 CHECK (returned >= 0);
-- Units of the line received back and put back in stock.
ALTER TABLE order_lines ADD COLUMN restocked bigint NOT NULL DEFAULT 0 CHECK (restocked >= 0);
ALTER TABLE order_lines ADD CONSTRAINT order_lines_returns_within_shipped
    CHECK (returned + return_requested <= shipped AND restocked <= returned);

-- `lines` is `[{"line_no", "sku", "product_id", "quantity", "received", "restock"}]`: the
-- units asked for, and once the return is received the units that came back and whether
-- they went back in stock (null until then).
CREATE TABLE order_returns (
    id          uuid        NOT NULL PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id),
    status      text        NOT NULL CHECK (status IN ('requested', 'received')),
    reason      text,
    lines       jsonb       NOT NULL,
    refund_id   uuid,
    actor       jsonb       NOT NULL,
    received_by jsonb,
    created_at  timestamptz NOT NULL,
    received_at timestamptz
);
CREATE INDEX order_returns_order_id ON order_returns (order_id);
