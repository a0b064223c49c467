-- Placing a batch of orders in one round trip. The Rust side (crates/storage/src/orders/
-- postgres.rs) sends the batch as JSON and gets one result per order back; everything runs
-- inside the caller's transaction, so the batch still commits (or not) as a whole. Each order
-- runs in its own subtransaction (the BEGIN … EXCEPTION block): an order that is refused or
-- fails is undone without disturbing the others.
--
-- The SQLite backend runs the same steps from Rust (crates/storage/src/orders/create.rs); one
-- test suite holds both to the same behaviour.

CREATE FUNCTION orderly_place_order(req jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_api_key  uuid        := (req->>'api_key')::uuid;
    v_key      text        := req->>'key';
    v_print    bytea       := decode(req->>'fingerprint', 'hex');
    v_now      timestamptz := (req->>'now')::timestamptz;
    v_order    uuid        := (req->>'order_id')::uuid;
    v_currency text        := req->>'currency';
    v_record   record;
    v_line     jsonb;
    v_index    int := 0;
    v_pid      uuid;
    v_seen     uuid[] := '{}';
    v_resolved jsonb := '[]';
    v_problems jsonb := '[]';
    v_shorts   jsonb := '[]';
    v_lines    jsonb := '[]';
    v_snap     record;
    v_state    record;
    v_total    bigint := 0;
    v_amount   bigint;
BEGIN
    SELECT fingerprint, response_status, response_body, expires_at INTO v_record
      FROM idempotency_keys WHERE api_key_id = v_api_key AND key = v_key;
    IF FOUND THEN
        IF v_record.expires_at > v_now THEN
            IF v_record.fingerprint = v_print THEN
                RETURN jsonb_build_object('outcome', 'replayed',
                    'status', v_record.response_status, 'body', v_record.response_body);
            END IF;
            RETURN jsonb_build_object('outcome', 'key_reused');
        END IF;
        DELETE FROM idempotency_keys WHERE api_key_id = v_api_key AND key = v_key;
    END IF;

    BEGIN
        -- Resolve every line to a product id; refuse unknown skus and repeated products.
        FOR v_line IN SELECT value FROM jsonb_array_elements(req->'lines') LOOP
            IF v_line->>'product_id' IS NOT NULL THEN
                v_pid := (v_line->>'product_id')::uuid;
            ELSE
                SELECT id INTO v_pid FROM products WHERE sku = v_line->>'sku';
            END IF;
            IF v_pid IS NULL THEN
                v_problems := v_problems || jsonb_build_object('line', v_index,
                    'code', 'unknown_product');
            ELSIF v_pid = ANY (v_seen) THEN
                v_problems := v_problems || jsonb_build_object('line', v_index,
                    'code', 'duplicate_product');
            ELSE
                v_seen := v_seen || v_pid;
                v_resolved := v_resolved || jsonb_build_object('line', v_index,
                    'product_id', v_pid, 'quantity', (v_line->>'quantity')::bigint);
            END IF;
            v_index := v_index + 1;
        END LOOP;

        -- Reserve stock in product-id order: concurrent orders lock rows in one order.
        FOR v_line IN SELECT value FROM jsonb_array_elements(v_resolved)
                      ORDER BY (value->>'product_id')::uuid LOOP
            v_pid := (v_line->>'product_id')::uuid;
            UPDATE products
               SET stock = stock - (v_line->>'quantity')::bigint, version = version + 1,
                   updated_at = v_now
             WHERE id = v_pid AND stock >= (v_line->>'quantity')::bigint AND active
            RETURNING sku, name, price, currency INTO v_snap;
            IF FOUND AND v_snap.currency = v_currency THEN
                v_lines := v_lines || jsonb_build_object('line', v_line->'line',
                    'product_id', v_pid, 'sku', v_snap.sku, 'name', v_snap.name,
                    'unit_price', v_snap.price, 'quantity', v_line->'quantity');
            ELSIF FOUND THEN
                v_problems := v_problems || jsonb_build_object('line', v_line->'line',
                    'code', 'currency_mismatch');
            ELSE
                SELECT stock, active INTO v_state FROM products WHERE id = v_pid;
                IF NOT FOUND THEN
                    v_problems := v_problems || jsonb_build_object('line', v_line->'line',
                        'code', 'unknown_product');
                ELSIF NOT v_state.active THEN
                    v_problems := v_problems || jsonb_build_object('line', v_line->'line',
                        'code', 'product_unavailable');
                ELSE
                    v_shorts := v_shorts || jsonb_build_object('line', v_line->'line',
                        'product_id', v_pid, 'requested', v_line->'quantity',
                        'available', v_state.stock);
                END IF;
            END IF;
        END LOOP;

        IF jsonb_array_length(v_problems) > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = jsonb_build_object(
                'outcome', 'invalid', 'problems', v_problems)::text;
        END IF;
        IF jsonb_array_length(v_shorts) > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = jsonb_build_object(
                'outcome', 'short', 'shorts', v_shorts)::text;
        END IF;

        -- Lines keep the order the client sent them in; bigint arithmetic raises on overflow.
        SELECT coalesce(jsonb_agg(l.value || jsonb_build_object('line_total',
                   (l.value->>'unit_price')::bigint * (l.value->>'quantity')::bigint)
                   ORDER BY (l.value->>'line')::int), '[]')
          INTO v_lines FROM jsonb_array_elements(v_lines) AS l;
        SELECT coalesce(sum((l.value->>'line_total')::bigint), 0)::bigint INTO v_total
          FROM jsonb_array_elements(v_lines) AS l;

        INSERT INTO orders (id, status, email, name, note, currency, total, created_by,
                            created_at, updated_at)
        VALUES (v_order, 'pending', req->>'email', req->>'name', req->>'note', v_currency,
                v_total, v_api_key, v_now, v_now);
        INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price,
                                 quantity, line_total)
        SELECT v_order, (l.ord)::int, (l.value->>'product_id')::uuid, l.value->>'sku',
               l.value->>'name', (l.value->>'unit_price')::bigint,
               (l.value->>'quantity')::bigint, (l.value->>'line_total')::bigint
          FROM jsonb_array_elements(v_lines) WITH ORDINALITY AS l(value, ord);
        INSERT INTO events (id, type, subject_id, payload, created_at)
        VALUES ((req->>'event_id')::uuid, 'order.created', v_order,
                jsonb_build_object('order_id', v_order::text, 'status', 'pending',
                    'email', req->>'email', 'currency', v_currency, 'total', v_total),
                v_now);
        -- The body is filled in by the caller, in the same transaction, once rendered.
        INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id,
                                      response_status, response_body, created_at, expires_at)
        VALUES (v_api_key, v_key, v_print, v_order, 201, '', v_now,
                v_now + make_interval(secs => (req->>'ttl_secs')::double precision));
    EXCEPTION
        WHEN SQLSTATE 'OR001' THEN
            RETURN SQLERRM::jsonb;
        WHEN numeric_value_out_of_range THEN
            RETURN jsonb_build_object('outcome', 'too_large');
        WHEN unique_violation THEN
            -- Another transaction committed this idempotency key after our lookup.
            SELECT fingerprint, response_status, response_body, expires_at INTO v_record
              FROM idempotency_keys WHERE api_key_id = v_api_key AND key = v_key;
            IF NOT FOUND OR v_record.expires_at <= v_now THEN
                RETURN jsonb_build_object('outcome', 'in_flight');
            ELSIF v_record.fingerprint = v_print THEN
                RETURN jsonb_build_object('outcome', 'replayed',
                    'status', v_record.response_status, 'body', v_record.response_body);
            END IF;
            RETURN jsonb_build_object('outcome', 'key_reused');
        WHEN OTHERS THEN
            RETURN jsonb_build_object('outcome', 'error', 'sqlstate', SQLSTATE,
                'message', SQLERRM);
    END;
    RETURN jsonb_build_object('outcome', 'created', 'total', v_total, 'lines', v_lines);
END
$$;

-- Places every order of `requests` (a JSON array), after locking all the products the batch
-- names in id order, so concurrent batches cannot deadlock on each other's rows.
CREATE FUNCTION orderly_place_orders(requests jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_request jsonb;
    v_results jsonb := '[]';
BEGIN
    PERFORM 1 FROM products
     WHERE id IN (SELECT (l->>'product_id')::uuid
                    FROM jsonb_array_elements(requests) AS r,
                         jsonb_array_elements(r->'lines') AS l
                   WHERE l->>'product_id' IS NOT NULL)
        OR sku IN (SELECT l->>'sku'
                     FROM jsonb_array_elements(requests) AS r,
                          jsonb_array_elements(r->'lines') AS l
                    WHERE l->>'sku' IS NOT NULL)
     ORDER BY id FOR UPDATE;
    FOR v_request IN SELECT value FROM jsonb_array_elements(requests) LOOP
        v_results := v_results || jsonb_build_array(orderly_place_order(v_request));
    END LOOP;
    RETURN v_results;
END
$$;
