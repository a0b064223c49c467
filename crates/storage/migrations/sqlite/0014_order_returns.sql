-- Returns: shipped units a customer sends back. A return is requested for some shipped units,
-- then received: the units that came back, each line put back in stock or not.

-- Units of the line on a return asked for and not yet received.
ALTER TABLE order_lines ADD COLUMN return_requested INTEGER NOT NULL DEFAULT 0
    CHECK (return_requested >= 0);
-- Units of the line received back (they leave the order's total); with those on a return,
-- never more than shipped.
ALTER TABLE order_lines ADD COLUMN returned INTEGER NOT NULL DEFAULT 0
    CHECK (returned >= 0 AND returned + return_requested <= shipped);
-- Units of the line received back and put back in stock.
ALTER TABLE order_lines ADD COLUMN restocked INTEGER NOT NULL DEFAULT 0
    CHECK (restocked >= 0 AND restocked <= returned);

-- `lines` is `[{"line_no", "sku", "product_id", "quantity", "received", "restock"}]`: the
-- units asked for, and once the return is received the units that came back and whether
-- they went back in stock (null until then).
CREATE TABLE order_returns (
    id          BLOB NOT NULL PRIMARY KEY,
    order_id    BLOB NOT NULL REFERENCES orders (id),
    status      TEXT NOT NULL CHECK (status IN ('requested', 'received')),
    reason      TEXT,
    lines       TEXT NOT NULL,
    refund_id   BLOB,
    actor       TEXT NOT NULL,
    received_by TEXT,
    created_at  TEXT NOT NULL,
    received_at TEXT
) STRICT;
CREATE INDEX order_returns_order_id ON order_returns (order_id);
