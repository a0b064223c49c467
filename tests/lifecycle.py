#!/usr/bin/env python3
"""The lifecycle checker: concurrent clients make random changes to a shared set of orders and
products through the API, recording every request and its answer; then the database, the
orders' histories and the mail outbox are read back and every invariant is checked.

    lifecycle.py URL KEY DATABASE_URL OUTBOX SECONDS CLIENTS

Operations: place an order, capture part of it (sometimes a capture the provider reports a
second time), ship some units, cancel some units (or every open one), refund part (sometimes
against a line), ask for a return of a shipped unit, receive a return (all or part of it,
restocked or not, refunded or not), edit an order's lines (units changed, a line dropped, a
product added), set a product's stock with a reason, send a change again
with its Idempotency-Key, and send one with a stale If-Match. Each change carries a token of
its own (the capture's reference, the shipment's tracking number, the refund's, the return's
and the stock change's reason), so each acknowledged one can be found in the database exactly
once and each refused one not at all.

Checked afterwards: per product, stock = starting stock − units ordered + units cancelled +
units restocked from returns + Σ adjustments, never negative; per line, cancelled + shipped ≤
quantity, restocked ≤ returned, returned + on a return ≤ shipped, both as its returns hold
them; per order, total = Σ price × (quantity − cancelled − returned), captured and refunded are the sums of their rows, refunded ≤
captured, the statuses follow the figures, nothing shipped while a balance was due; every
acknowledged operation applied once and every refused one not at all; a replay answered as the
first answer; each order's history is its events, each with the actor; one message with its
own Message-ID per receipt, shipment, cancellation, refund and received return. Prints the figures as JSON and
exits 1 on any violation. Standard library only (psql for PostgreSQL)."""

import email
import http.client
import json
import pathlib
import random
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

PRODUCTS = 6
START_STOCK = 60
SEED_ORDERS = 30


class Client:
    """One keep-alive HTTP connection, reopened after an error."""

    def __init__(self, url, key):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port, self.key = parsed.hostname, parsed.port, key
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        all_headers = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, data, all_headers)
                response = self.conn.getresponse()
                raw = response.read()
                parsed = json.loads(raw) if raw else None
                return response.status, parsed, dict(response.getheaders())
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


class World:
    """What the clients share: the products, the orders placed, the journal of operations."""

    def __init__(self):
        self.lock = threading.Lock()
        self.products = []  # (id, sku, price)
        self.orders = {}  # id -> [(sku, quantity)]
        self.journal = []
        self.captures = []  # (order, reference) acknowledged
        self.returns = []  # (order, return id, [(sku, quantity)]) asked for, not yet received

    def record(self, entry):
        with self.lock:
            self.journal.append(entry)

    def pick_order(self, rng):
        with self.lock:
            order = rng.choice(list(self.orders))
            return order, self.orders[order]


def change(client, world, op, order, route, body, token, headers=None, key=None):
    key = key or str(uuid.uuid4())
    status, answer, got = client.request(
        "POST", f"/v1/orders/{order}/{route}", body, {"Idempotency-Key": key, **(headers or {})}
    )
    world.record({"op": op, "order": order, "route": route, "body": body, "key": key,
                  "token": token, "status": status, "answer": answer,
                  "replayed": got.get("idempotent-replayed") == "true", "stale": bool(headers)})
    return status, answer


def place(client, world, rng):
    lines = rng.sample(world.products, rng.randint(1, 3))
    body = {"customer": {"email": "shopper@example.com", "name": "Shopper"},
            "lines": [{"sku": sku, "quantity": rng.randint(1, 3)} for _, sku, _ in lines]}
    status, answer, _ = client.request("POST", "/v1/orders", body,
                                       {"Idempotency-Key": str(uuid.uuid4())})
    world.record({"op": "place", "body": body, "status": status, "answer": answer})
    if status == 201:
        with world.lock:
            world.orders[answer["id"]] = [(l["sku"], l["quantity"]) for l in body["lines"]]


def operate(client, world, rng):
    """One random operation."""
    roll = rng.random()
    if roll < 0.08 or not world.orders:
        return place(client, world, rng)
    order, lines = world.pick_order(rng)
    token = uuid.uuid4().hex
    sku, quantity = rng.choice(lines)
    if roll < 0.28:
        # As a shop would: the balance due as the order shows it now, or a part of it; by the
        # time the capture arrives another client may have changed the order.
        _, current, _ = client.request("GET", f"/v1/orders/{order}")
        due = current["balance_due"]
        amount = rng.choice([due, rng.randint(1, due)]) if due > 0 else rng.randint(1, 500)
        status, _ = change(client, world, "capture", order, "payments",
                           {"amount": amount, "provider": "checker", "reference": token}, token)
        if status == 201:
            with world.lock:
                world.captures.append((order, token))
    elif roll < 0.32 and world.captures:
        with world.lock:
            order, reference = rng.choice(world.captures)
        change(client, world, "capture_again", order, "payments",
               {"amount": 1, "provider": "checker", "reference": reference}, reference)
    elif roll < 0.48:
        change(client, world, "ship", order, "fulfillments",
               {"lines": [{"sku": sku, "quantity": rng.randint(1, 2)}],
                "tracking": {"carrier": "checker", "number": token}}, token)
    elif roll < 0.58:
        body = {} if rng.random() < 0.15 else {"lines": [{"sku": sku, "quantity": 1}]}
        change(client, world, "cancel", order, "cancellations", body, token)
    elif roll < 0.66:
        body = {"amount": rng.randint(1, 600), "reason": token}
        if rng.random() < 0.3:
            body["lines"] = [{"sku": sku, "quantity": 1}]
        change(client, world, "refund", order, "refunds", body, token)
    elif roll < 0.70:
        # A line with a shipped unit not already on a return, as the order shows it now.
        _, current, _ = client.request("GET", f"/v1/orders/{order}")
        returnable = [l["sku"] for l in current["lines"]
                      if l["shipped"] > l["returned"] + l["return_requested"]]
        body = {"lines": [{"sku": rng.choice(returnable or [sku]), "quantity": 1}],
                "reason": token}
        status, answer = change(client, world, "return", order, "returns", body, token)
        if status == 201:
            ret = next(r for r in answer["returns"] if r.get("reason") == token)
            with world.lock:
                world.returns.append((order, ret["id"], [(l["sku"], l["quantity"]) for l in ret["lines"]]))
    elif roll < 0.74 and world.returns:
        with world.lock:
            order, return_id, asked = world.returns.pop(rng.randrange(len(world.returns)))
        body = {"lines": [{"sku": s, "quantity": rng.randint(1, q), "restock": rng.random() < 0.7}
                          for s, q in asked]}
        refund = rng.choice([None, True, rng.randint(1, 400)])
        if refund is not None:
            body["refund"] = refund
        status, _ = change(client, world, "receive", order, f"returns/{return_id}/receive",
                           body, return_id)
        if status != 201 and refund is not True:
            with world.lock:  # refused (a refund over what may be refunded): try it later
                world.returns.append((order, return_id, asked))
    elif roll < 0.78:
        # The lines as the order shows them now, each kept, changed or dropped, and perhaps
        # a product added (refused once a unit has shipped, or for stock).
        _, current, _ = client.request("GET", f"/v1/orders/{order}")
        lines = []
        for l in current["lines"]:
            units = max(0, l["quantity"] - l["cancelled"] + rng.randint(-1, 1))
            if units > 0 and rng.random() < 0.85:
                lines.append({"sku": l["sku"], "quantity": units})
        held = {l["sku"] for l in current["lines"]}
        extra = [p for p in world.products if p[1] not in held]
        if extra and (rng.random() < 0.3 or not lines):
            lines.append({"sku": rng.choice(extra)[1], "quantity": rng.randint(1, 2)})
        if lines:
            key = str(uuid.uuid4())
            status, answer, got = client.request("PATCH", f"/v1/orders/{order}", {"lines": lines},
                                                 {"Idempotency-Key": key})
            world.record({"op": "edit", "order": order, "body": {"lines": lines}, "key": key,
                          "status": status, "answer": answer, "stale": False,
                          "replayed": got.get("idempotent-replayed") == "true"})
            if status == 201:
                with world.lock:
                    world.orders[order] = [(l["sku"], l["quantity"]) for l in lines]
    elif roll < 0.84:
        product_id, _, _ = rng.choice(world.products)
        status, product, _ = client.request("GET", f"/v1/products/{product_id}")
        assert status == 200, status
        stock = max(0, product["stock"] + rng.randint(-4, 8))
        status, answer, _ = client.request("PATCH", f"/v1/products/{product_id}",
                                           {"stock": stock, "reason": token})
        world.record({"op": "adjust", "product": product_id, "token": token, "status": status,
                      "answer": answer})
    elif roll < 0.94:
        with world.lock:
            # Only changes that were made: a refused one leaves its key unused.
            earlier = [e for e in world.journal[-200:] if "route" in e and e["status"] == 201]
        if earlier:
            first = rng.choice(earlier)
            status, answer, got = client.request(
                "POST", f"/v1/orders/{first['order']}/{first['route']}", first["body"],
                {"Idempotency-Key": first["key"]})
            world.record({"op": "replay", "of": first["key"], "status": status, "answer": answer,
                          "replayed": got.get("idempotent-replayed") == "true"})
    else:
        change(client, world, "stale_capture", order, "payments",
               {"amount": 1, "provider": "checker", "reference": token}, token,
               headers={"If-Match": '"0"'})


def run_clients(url, key, world, seconds, clients):
    deadline = time.monotonic() + seconds
    errors = []

    def loop(n):
        rng = random.Random(n * 7919 + int(time.time()))
        client = Client(url, key)
        try:
            while time.monotonic() < deadline:
                operate(client, world, rng)
        except Exception as e:  # a transport failure ends the client and is a violation
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started, errors


class Database:
    """Rows from SQLite (the sqlite3 module) or PostgreSQL (psql), ids as 32 hex digits."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.startswith("sqlite://")

    def hexid(self, column):
        return f"lower(hex({column}))" if self.sqlite else f"replace({column}::text, '-', '')"

    def rows(self, sql):
        if self.sqlite:
            path = self.url[len("sqlite://"):].split("?")[0]
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                return [tuple("" if v is None else str(v) for v in row)
                        for row in conn.execute(sql)]
            finally:
                conn.close()
        out = subprocess.run(["psql", "-qAtX", "-F", "\t", self.url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]


def wait_for_mail(db, seconds=60):
    query = ("SELECT count(*) FROM jobs WHERE kind IN ('send_receipt', 'notify_customer') "
             "AND state <> 'completed'")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if db.rows(query)[0][0] == "0":
            return True
        time.sleep(0.5)
    return False


def check(url, key, db, outbox, world, violations):
    """Every invariant, each failure appended to `violations`."""
    def fail(message):
        violations.append(message)

    client = Client(url, key)
    h = db.hexid
    products = {r[0]: (r[1], int(r[2])) for r in db.rows(
        f"SELECT {h('id')}, sku, stock FROM products")}
    lines = db.rows(f"SELECT {h('order_id')}, sku, unit_price, quantity, cancelled, shipped, "
                    f"refunded, return_requested, returned, restocked FROM order_lines")
    orders = {r[0]: {"status": r[1], "total": int(r[2]), "captured": int(r[3]),
                     "refunded": int(r[4]), "lines": []}
              for r in db.rows(f"SELECT {h('id')}, status, total, captured, refunded FROM orders")}
    for order, sku, price, quantity, cancelled, shipped, refunded, *returns_figures in lines:
        requested, returned, restocked = (int(v) for v in returns_figures)
        orders[order]["lines"].append({"sku": sku, "price": int(price), "quantity": int(quantity),
                                       "cancelled": int(cancelled), "shipped": int(shipped),
                                       "refunded": int(refunded), "return_requested": requested,
                                       "returned": returned, "restocked": restocked})
    returns = [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in db.rows(
        f"SELECT {h('order_id')}, {h('id')}, status, reason, lines FROM order_returns")]
    events = [(r[0], r[1], json.loads(r[2])) for r in db.rows(
        f"SELECT type, {h('subject_id')}, payload FROM events ORDER BY created_at, id")]
    payments = db.rows(f"SELECT {h('order_id')}, amount, reference FROM payments")
    shipments = db.rows(f"SELECT {h('order_id')}, number FROM fulfillments")
    refunds = db.rows(f"SELECT {h('order_id')}, amount, reason FROM refunds")

    # Per product: stock = start − ordered + cancelled + Σ adjustments, never negative.
    sold = {}
    for o in orders.values():
        for line in o["lines"]:
            net = line["quantity"] - line["cancelled"]
            if o["status"] == "expired":
                net = 0
            net -= line["restocked"]
            sold[line["sku"]] = sold.get(line["sku"], 0) + net
    started = {e[2]["sku"]: e[2]["product"]["stock"] for e in events if e[0] == "product.created"}
    adjusted = {}
    for kind, _, payload in events:
        if kind == "product.stock_adjusted":
            adjusted[payload["sku"]] = adjusted.get(payload["sku"], 0) + payload["delta"]
    for sku, stock in products.values():
        expected = started.get(sku, 0) - sold.get(sku, 0) + adjusted.get(sku, 0)
        if stock != expected or stock < 0:
            fail(f"product {sku}: stock {stock}, expected {expected}")

    # Per line and per order: the figures and the statuses.
    paid_rows, refund_rows = {}, {}
    for order, amount, _ in payments:
        paid_rows[order] = paid_rows.get(order, 0) + int(amount)
    for order, amount, _ in refunds:
        refund_rows[order] = refund_rows.get(order, 0) + int(amount)
    on_returns = {}  # (order, sku) -> [units asked for and not received, units received]
    for order, _, status, _, ret_lines in returns:
        for l in ret_lines:
            figures = on_returns.setdefault((order, l["sku"]), [0, 0])
            if status == "requested":
                figures[0] += l["quantity"]
            else:
                figures[1] += l["received"]
    for oid, o in orders.items():
        kept = open_units = 0
        for line in o["lines"]:
            if not (0 <= line["restocked"] <= line["returned"]
                    and line["returned"] + line["return_requested"] <= line["shipped"]):
                fail(f"order {oid} line {line['sku']}: returned/restocked/shipped {line}")
            held = on_returns.get((oid, line["sku"]), [0, 0])
            if [line["return_requested"], line["returned"]] != held:
                fail(f"order {oid} line {line['sku']}: on a return / returned "
                     f"{line['return_requested']}/{line['returned']}, its returns hold {held}")
            if line["cancelled"] + line["shipped"] > line["quantity"] or min(
                    line["cancelled"], line["shipped"], line["refunded"]) < 0:
                fail(f"order {oid} line {line['sku']}: {line}")
            if line["refunded"] > line["price"] * line["quantity"]:
                fail(f"order {oid} line {line['sku']}: refunded {line['refunded']} over its price")
            kept += line["quantity"] - line["cancelled"]
            open_units += line["quantity"] - line["cancelled"] - line["shipped"]
        total = sum(l["price"] * (l["quantity"] - l["cancelled"] - l["returned"])
                    for l in o["lines"])
        if o["total"] != total:
            fail(f"order {oid}: total {o['total']}, lines say {total}")
        if o["captured"] != paid_rows.get(oid, 0) or o["refunded"] != refund_rows.get(oid, 0):
            fail(f"order {oid}: captured {o['captured']} refunded {o['refunded']}, rows say "
                 f"{paid_rows.get(oid, 0)} and {refund_rows.get(oid, 0)}")
        if o["refunded"] > o["captured"]:
            fail(f"order {oid}: refunded {o['refunded']} > captured {o['captured']}")
        due = max(0, o["total"] - (o["captured"] - o["refunded"]))
        shipped = sum(l["shipped"] for l in o["lines"])
        expected = ("cancelled" if kept == 0 else "fulfilled" if open_units == 0 else None)
        if expected and o["status"] != expected:
            fail(f"order {oid}: status {o['status']}, its units say {expected}")
        if not expected and o["status"] not in ("pending", "paid"):
            fail(f"order {oid}: status {o['status']} with {open_units} units open")
        if o["status"] == "pending" and (due == 0 or shipped > 0):
            fail(f"order {oid}: pending with {due} due and {shipped} shipped")
    for kind, subject, payload in events:
        if kind == "order.fulfillment_created" and payload.get("balance_due") != 0:
            fail(f"order {subject}: shipped with {payload.get('balance_due')} due")

    # Each acknowledged operation applied exactly once; each refused one not at all.
    by_token = {"capture": {}, "ship": {}, "refund": {}, "return": {}}
    for _, _, _, reason, _ in returns:
        by_token["return"][reason] = by_token["return"].get(reason, 0) + 1
    return_status = {ret_id: status for _, ret_id, status, _, _ in returns}
    received_events = {}
    for kind, _, payload in events:
        if kind == "order.return_received":
            ret_id = payload["return_id"].replace("-", "")
            received_events[ret_id] = received_events.get(ret_id, 0) + 1
    for _, _, reference in payments:
        by_token["capture"][reference] = by_token["capture"].get(reference, 0) + 1
    for _, number in shipments:
        by_token["ship"][number] = by_token["ship"].get(number, 0) + 1
    for _, _, reason in refunds:
        by_token["refund"][reason] = by_token["refund"].get(reason, 0) + 1
    stock_reasons = {}
    for kind, _, payload in events:
        if kind == "product.stock_adjusted":
            stock_reasons.setdefault(payload["reason"], []).append(payload["stock"])
    cancels, edits = {}, {}
    for kind, subject, _ in events:
        if kind == "order.units_cancelled":
            cancels[subject] = cancels.get(subject, 0) + 1
        if kind == "order.edited":
            edits[subject] = edits.get(subject, 0) + 1
    acknowledged_cancels, acknowledged_edits = {}, {}
    first_answer = {}
    placed = 0
    for e in world.journal:
        op, status = e["op"], e["status"]
        if status >= 500 or status in (400, 401, 403, 404):
            fail(f"{op}: answered {status}: {e.get('answer')}")
            continue
        if op == "place":
            placed += status == 201
            if status == 201 and e["answer"]["id"].replace("-", "") not in orders:
                fail(f"acknowledged order {e['answer']['id']} is missing")
        elif op in by_token:
            found = by_token[op].get(e["token"], 0)
            if found != (1 if status == 201 else 0):
                fail(f"{op} {e['token']} answered {status}, found {found} times")
        elif op == "capture_again" and status not in (200, 409):
            fail(f"a capture reported again answered {status}")
        elif op == "stale_capture" and (status != 412 or e["token"] in by_token["capture"]):
            fail(f"a stale If-Match answered {status}")
        elif op == "receive" and status == 201:
            ret_id = e["token"].replace("-", "")
            if return_status.get(ret_id) != "received" or received_events.get(ret_id) != 1:
                fail(f"return {ret_id} received (201) but stored {return_status.get(ret_id)} "
                     f"with {received_events.get(ret_id, 0)} events")
        elif op == "edit" and status == 201:
            oid = e["order"].replace("-", "")
            acknowledged_edits[oid] = acknowledged_edits.get(oid, 0) + 1
        elif op == "cancel" and status == 201:
            oid = e["order"].replace("-", "")
            acknowledged_cancels[oid] = acknowledged_cancels.get(oid, 0) + 1
        elif op == "adjust":
            # Orders move the stock between the client's read and its change, so whether the
            # change moved it is known only to the server: at most one event, and with an
            # event the stock it names is the one answered.
            found = stock_reasons.get(e["token"], [])
            if status != 200 or len(found) > 1 or (
                    found and found[0] != e["answer"]["stock"]):
                fail(f"stock change {e['token']} answered {status}, recorded as {found}")
        if "key" in e and op != "replay":
            first_answer[e["key"]] = (status, e["answer"])
        if op == "replay":
            first = first_answer.get(e["of"])
            if first and (status, e["answer"]) != first:
                fail(f"replay of {e['of']}: {status} {e['answer']} after {first[0]} {first[1]}")
            if first and first[0] < 300 and not e["replayed"]:
                fail(f"replay of {e['of']} not marked Idempotent-Replayed")
    for oid in set(edits) | set(acknowledged_edits):
        if edits.get(oid, 0) != acknowledged_edits.get(oid, 0):
            fail(f"order {oid}: {edits.get(oid, 0)} edits recorded, "
                 f"{acknowledged_edits.get(oid, 0)} acknowledged")
    for ret_id, n in received_events.items():
        if n > 1:
            fail(f"return {ret_id} received {n} times")
    for oid in set(cancels) | set(acknowledged_cancels):
        if cancels.get(oid, 0) != acknowledged_cancels.get(oid, 0):
            fail(f"order {oid}: {cancels.get(oid, 0)} cancellations recorded, "
                 f"{acknowledged_cancels.get(oid, 0)} acknowledged")
    if placed != len(orders):
        fail(f"{placed} orders acknowledged, {len(orders)} stored")

    # Each order's history: its events in order, every one naming the key that acted.
    for oid in orders:
        status, history, _ = client.request("GET", f"/v1/orders/{uuid.UUID(oid)}/history")
        kinds = [e["type"] for e in history["data"]]
        stored = [kind for kind, subject, _ in events if subject == oid]
        if status != 200 or sorted(kinds) != sorted(stored):
            fail(f"order {oid}: history {kinds}, events {stored}")
        if any(e["actor"]["type"] != "api_key" or e["actor"]["name"] != "lifecycle"
               for e in history["data"]):
            fail(f"order {oid}: a history entry without the key as its actor")

    # One message per receipt, shipment, cancellation and refund, each its own Message-ID.
    if not wait_for_mail(db):
        fail("mail jobs still unfinished 60 s after the load")
    noticed = sum(1 for kind, _, _ in events if kind in (
        "order.fulfillment_created", "order.units_cancelled", "order.refunded",
        "order.return_received", "order.edited"))
    ids = []
    for path in pathlib.Path(outbox).glob("*.eml"):
        with open(path, "rb") as f:
            ids.append(email.message_from_binary_file(f)["Message-ID"])
    if len(ids) != len(orders) + noticed or len(set(ids)) != len(ids):
        fail(f"{len(ids)} messages ({len(set(ids))} Message-IDs) for {len(orders)} receipts "
             f"and {noticed} notices")
    return {"orders": len(orders), "messages": len(ids), "events": len(events)}


def main():
    url, key, database_url, outbox = sys.argv[1:5]
    seconds, clients = float(sys.argv[5]), int(sys.argv[6])
    world = World()
    setup = Client(url, key)
    rng = random.Random(1)
    run = uuid.uuid4().hex[:6].upper()
    for i in range(PRODUCTS):
        sku = f"LC-{run}-{i}"
        price = rng.randint(200, 900)
        status, product, _ = setup.request("POST", "/v1/products", {
            "sku": sku, "name": f"Lifecycle product {i}", "price": price, "stock": START_STOCK})
        assert status == 201, (status, product)
        world.products.append((product["id"], sku, price))
    while len(world.orders) < SEED_ORDERS:
        place(setup, world, rng)
    seeded = len(world.journal)
    elapsed, errors = run_clients(url, key, world, seconds, clients)
    operations = world.journal[seeded:]
    violations = list(errors)
    figures = check(url, key, Database(database_url), outbox, world, violations)
    outcomes = {}
    for e in operations:
        outcomes.setdefault(e["op"], {}).setdefault(str(e["status"]), 0)
        outcomes[e["op"]][str(e["status"])] += 1
    print(json.dumps({
        "seconds": round(elapsed, 1), "clients": clients, "operations": len(operations),
        "operations_per_s": round(len(operations) / elapsed, 1), "outcomes": outcomes,
        **figures, "violations": len(violations), "first_violations": violations[:20],
    }))
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
