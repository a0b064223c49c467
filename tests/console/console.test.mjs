// The operator's console in headless Chromium (Debian's, driven by playwright-core): a real
// `orderly run` on a fresh SQLite file, a real SMTP sink (aiosmtpd) started mid-test, and a
// webhook receiver of our own. Each flow an operator follows at 3 a.m., end to end:
//   sign in; find an order by e-mail and cancel it; see a failing job's error and retry it
//   once the cause is fixed; pause a queue and watch jobs wait, resume it and watch them run;
//   redeliver a webhook; an action without the CSRF token is refused; a signed-out browser is
//   sent to sign-in; every page fits a phone's width.
// A screenshot of each page goes to $ORDERLY_CONSOLE_SCREENSHOTS (docs/console/ in the repo).
// Run by tests/console.sh, which installs what it needs.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.ORDERLY_BIN;
assert.ok(BIN, "ORDERLY_BIN names the orderly binary");
const WORK = fs.mkdtempSync(path.join(process.env.ORDERLY_CONSOLE_DIR || os.tmpdir(), "console-"));
const SHOTS = process.env.ORDERLY_CONSOLE_SCREENSHOTS || path.join(WORK, "screenshots");
fs.mkdirSync(SHOTS, { recursive: true });
const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const children = [];
// Whatever happens, no process of the test outlives it.
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));

// A port nothing listens on, below the kernel's ephemeral range, so that no outgoing
// connection takes it before the process it is for binds it (as scripts/free-port.py).
const ephemeralLow = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
async function freePort() {
  for (;;) {
    const port = 10000 + Math.floor(Math.random() * Math.max(ephemeralLow - 10000, 1));
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

async function until(what, check, seconds = 15) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// Starts a process logging to WORK/<name>.log; its stderr goes to <name>.stderr (orderly
// prints its first admin key there, which must not reach a log file).
function start(command, args, env, name) {
  const out = fs.openSync(path.join(WORK, `${name}.log`), "w");
  const err = fs.openSync(path.join(WORK, `${name}.stderr`), "w");
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", out, err] });
  children.push(child);
  return child;
}

// The webhook receiver: answers with `receiver.status`, records each delivery's event id.
const receiver = { status: 500, deliveries: [] };
const hookPort = await freePort();
const hooks = http.createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    receiver.deliveries.push({ id: request.headers["webhook-id"], status: receiver.status });
    response.writeHead(receiver.status, { "content-type": "text/plain" });
    response.end(receiver.status === 200 ? "thanks" : "the shop's database is down");
  });
});
await new Promise((resolve) => hooks.listen(hookPort, "127.0.0.1", resolve));

// orderly, with SMTP pointing at a port where nothing listens yet: receipts fail.
const port = await freePort();
const smtpPort = await freePort();
const base = `http://127.0.0.1:${port}`;
start(BIN, ["run"], {
  ORDERLY_DATABASE_URL: `sqlite://${path.join(WORK, "orderly.db")}`,
  ORDERLY_LISTEN: `127.0.0.1:${port}`,
  ORDERLY_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  ORDERLY_MAIL__TIMEOUT: "2s",
  ORDERLY_WORKER__MAX_ATTEMPTS__SEND_RECEIPT: "1",
  ORDERLY_WORKER__POLL_INTERVAL: "200ms",
  // No scheduled chore: `expire_orders` ticks every minute on the default queue, and one
  // landing while the queue is paused would be a sixth job waiting beside the five receipts.
  ORDERLY_WORKER__SCHEDULER: "false",
  ORDERLY_WEBHOOKS_ALLOW_PRIVATE: "true",
  ORDERLY_WEBHOOKS__RETRY_SCHEDULE: "1h",
  // The receiver fails on purpose for most of the run, and the flows below count on its
  // deliveries arriving meanwhile: its circuit breaker (tests/api/webhooks/breaker.rs) must
  // not open.
  ORDERLY_WEBHOOKS__BREAKER_FAILURES: "1000",
  ORDERLY_LOG_FORMAT: "json",
  RUST_LOG: "info",
}, "orderly");
const adminKey = await until("the first admin key", () => {
  const log = fs.readFileSync(path.join(WORK, "orderly.stderr"), "utf8");
  return log.match(/^ {4}(oly_[A-Za-z0-9_-]+)$/m)?.[1];
}, 30);
await until("orderly to be ready", async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok);
step("orderly is up");

async function api(method, route, body) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${route}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const order = (email) => api("POST", "/v1/orders", {
  customer: { email, name: "Ana Lima" },
  lines: [{ sku: "LAMP", quantity: 1 }],
});

await api("POST", "/v1/products", { sku: "LAMP", name: "Desk lamp", price: 4_500, stock: 100 });
const endpoint = await api("POST", "/v1/webhooks", { url: `http://127.0.0.1:${hookPort}/hooks`, event_types: ["order.created"] });
const ana = await order("ana@example.com");
const bea = await order("bea@example.com");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.on("dialog", (dialog) => dialog.accept());
// A screenshot of the page, which must fit the window's width.
async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name} fits the window (${overflow}px too wide)`);
}

try {
  // Sign in.
  await page.goto(`${base}/console/jobs`);
  assert.match(page.url(), /\/console\/sign-in\?next=%2Fconsole%2Fjobs$/);
  await shot("sign-in");
  await page.fill("#key", adminKey);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/console/jobs`);
  assert.equal(await page.locator("header .who").textContent(), "initial admin");
  assert.ok(!(await page.content()).includes(adminKey), "the key is not on the page");
  step("signed in");

  // A failing job: the receipt cannot reach the SMTP server. Its error, then a retry once the
  // server is up.
  await page.goto(`${base}/console/jobs?state=discarded&kind=send_receipt`);
  const failed = await until("the receipts to be discarded", async () => {
    await page.reload();
    return (await page.locator("table.jobs tbody tr").count()) === 2;
  });
  assert.ok(failed);
  await page.fill("input[name=error]", "connect");
  await page.click("form.filters button");
  assert.equal(await page.locator("table.jobs tbody tr").count(), 2, "both errors mention the connection");
  await shot("jobs");
  await page.locator("table.jobs tbody tr a").first().click();
  await page.waitForURL(/\/console\/jobs\/\d+$/);
  const causes = await page.locator("#last-error li").allTextContents();
  assert.ok(causes.length >= 2, `the cause chain: ${causes}`);
  assert.match(causes.join(" | "), /refused|connect/i);
  await shot("job");
  const maildir = path.join(WORK, "maildir");
  start("/usr/bin/python3", ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${smtpPort}`, "-c", "aiosmtpd.handlers.Mailbox", maildir], {}, "smtp");
  await until("the SMTP sink to listen", () => new Promise((resolve) => {
    const socket = net.connect(smtpPort, "127.0.0.1", () => { socket.end(); resolve(true); });
    socket.on("error", () => resolve(false));
  }));
  await page.click("text=Retry");
  await page.waitForSelector("p.notice");
  await until("the retried receipt to complete", async () => {
    await page.reload();
    return (await page.locator("#job-state").textContent()) === "completed";
  });
  const received = () => fs.existsSync(path.join(maildir, "new")) ? fs.readdirSync(path.join(maildir, "new")).length : 0;
  assert.equal(received(), 1, "the receipt arrived");
  step("a failing job's error seen, the job retried once the cause was fixed");

  // Find an order by e-mail and cancel it.
  await page.click("nav >> text=Orders");
  await page.fill("input[name=email]", "ana@example.com");
  await page.click("form.filters button");
  assert.equal(await page.locator("table.orders tbody tr").count(), 1);
  await shot("orders");
  await page.click(`a[href="/console/orders/${ana.id}"]`);
  assert.equal(await page.locator("#order-status").textContent(), "pending");
  await shot("order");
  await page.click("text=Cancel order");
  await page.waitForSelector("p.notice");
  assert.equal(await page.locator("#order-status").textContent(), "cancelled");
  assert.equal((await api("GET", `/v1/orders/${ana.id}`)).status, "cancelled");
  step("found an order by e-mail and cancelled it");

  // Pause a queue: jobs wait; resume: they run.
  await page.click("nav >> text=Queues");
  const available = async () => {
    await page.reload();
    return Number(await page.locator("tr[data-queue=default] td.available").textContent());
  };
  // The mail about the cancelled order goes out first: only the receipts wait below.
  await until("the default queue to be idle", async () => (await available()) === 0);
  await page.click("tr[data-queue=default] >> text=Pause");
  await page.waitForSelector("p.notice");
  const before = received();
  const delivered = receiver.deliveries.length;
  for (let i = 0; i < 5; i++) await order(`wait${i}@example.com`);
  await until("five receipts to wait in the paused queue", async () => (await available()) === 5);
  await shot("queues");
  // Shown without waiting on the clock: the five orders' webhook deliveries, on the queue
  // that is not paused, reach the receiver, so the worker is running and fetching; the
  // receipts, enqueued with the orders, still wait.
  await until("the five orders' webhook deliveries (another queue) to arrive", async () => receiver.deliveries.length >= delivered + 5);
  assert.equal(await available(), 5, "nothing starts while the queue is paused");
  assert.equal(received(), before, "no receipt went out");
  await page.click("tr[data-queue=default] >> text=Resume");
  await page.waitForSelector("p.notice");
  await until("the waiting receipts to run", async () => (await available()) === 0 && received() === before + 5);
  step("paused a queue and watched jobs wait; resumed it and watched them run");

  // The last hour, drawn on the server: the receipts just run reach the chart with the
  // worker's next sample (every ten seconds); each limit shows its use.
  const charted = (selector) => async () => {
    await page.reload();
    const points = await page.locator(selector).getAttribute("points");
    return points.split(" ").some((point) => Number(point.split(",")[1]) < 104);
  };
  await until("the receipts to be charted", charted('figure[data-chart="Queue default: jobs a minute"] polyline[data-series=completed]'), 25);
  assert.equal(await page.locator('tr[data-limit="partition:deliver_webhook"] svg.gauge').count(), 1);
  await shot("queues-charts");
  step("charted the queues' last hour and showed each limit's use");

  // Redeliver a webhook that failed, once the receiver is back.
  await page.click("nav >> text=Webhooks");
  await shot("webhooks");
  await page.click(`a[href="/console/webhooks/${endpoint.id}"]`);
  await until("the failed deliveries to be listed", async () => {
    await page.reload();
    return (await page.locator("table.deliveries tbody tr").count()) >= 2;
  });
  receiver.status = 200;
  const rows = await page.locator("table.deliveries tbody tr").count();
  await page.locator("table.deliveries tbody tr").last().locator("text=Redeliver").click();
  await page.waitForSelector("p.notice");
  await until("the redelivery to succeed", async () => {
    await page.reload();
    return (await page.locator("table.deliveries tbody tr").count()) > rows
      && (await page.locator("table.deliveries tbody tr").first().locator(".badge").textContent()) === "succeeded";
  });
  const byEvent = new Map();
  for (const d of receiver.deliveries) byEvent.set(d.id, [...(byEvent.get(d.id) ?? []), d]);
  const repeated = [...byEvent.values()].filter((list) => list.length > 1);
  assert.equal(repeated.length, 1, "one event was delivered twice");
  assert.deepEqual(repeated[0].map((d) => d.status), [500, 200], "the same event, failed then redelivered");
  await shot("webhook");
  step("redelivered a webhook");

  // An action without the CSRF token is refused, and changes nothing.
  await page.goto(`${base}/console/orders/${bea.id}`);
  await page.evaluate(() => document.querySelectorAll("input[name=csrf]").forEach((input) => input.remove()));
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/console/orders/${bea.id}/pay`)),
    page.click("text=Mark paid"),
  ]);
  assert.equal(refused.status(), 403);
  assert.match(await page.locator("h1").textContent(), /403/);
  assert.equal((await api("GET", `/v1/orders/${bea.id}`)).status, "pending");
  step("an action without the CSRF token was refused");

  // The overview, live; the audit log of it all.
  await page.goto(`${base}/console`);
  await page.waitForSelector("#live[data-refreshed]", { timeout: 15_000 });
  assert.match(await page.locator("#live").textContent(), /Worker processes alive\s*1/);
  await until("the orders to be charted", charted('figure[data-chart^="Orders a minute"] polyline[data-series=orders]'), 25);
  await shot("overview");
  await page.click("nav >> text=Audit log");
  const audit = await page.locator("table.audit").textContent();
  for (const action of ["session.sign_in", "job.retry", "order.cancel", "queue.pause", "queue.resume", "webhook.redeliver"]) {
    assert.ok(audit.includes(action), `${action} is in the audit log`);
  }
  assert.ok(!audit.includes("order.pay"), "the refused action is not");
  await shot("audit");

  // Pay an order in two captures and ship it, from its page.
  const cy = await order("cy@example.com");
  await page.goto(`${base}/console/orders/${cy.id}`);
  const record = async (route, fields) => {
    const form = page.locator(`form[action$='/changes/${route}']`);
    for (const [name, value] of Object.entries(fields)) await form.locator(`[name='${name}']`).fill(value);
    await form.locator("button[type=submit]").click();
    await page.waitForSelector("p.notice");
  };
  await record("payments", { amount: "20.00", reference: "till-1" });
  assert.equal(await page.locator("#payment-status").textContent(), "partially_paid");
  await record("payments", { amount: "25.00", reference: "till-2" });
  assert.equal(await page.locator("#order-status").textContent(), "paid");
  await record("fulfillments", { "units.LAMP": "1", carrier: "Post", url: "https://post.example/t/1" });
  assert.equal(await page.locator("#order-status").textContent(), "fulfilled");
  const history = await page.locator("ol.history").textContent();
  for (const kind of ["order.payment_captured", "order.paid", "order.fulfillment_created", "order.fulfilled"]) {
    assert.ok(history.includes(kind), `${kind} in the history`);
  }
  assert.equal((await api("GET", `/v1/orders/${cy.id}`)).captured, 4_500);
  await shot("order-lifecycle");
  step("paid an order in two captures and shipped it, from its page");

  // The lamp comes back: asked for, then received without going back in stock, refunded.
  await record("returns", { "units.LAMP": "1", reason: "flickers" });
  const receive = page.locator("form[action*='/changes/receive-']");
  await receive.locator("[name='restock.LAMP']").uncheck();
  await receive.locator("button[type=submit]").click();
  await page.waitForSelector("p.notice");
  const returned = await api("GET", `/v1/orders/${cy.id}`);
  assert.equal(returned.returns[0].status, "received");
  assert.deepEqual([returned.lines[0].returned, returned.lines[0].restocked], [1, 0]);
  assert.equal(returned.refunded, 4_500);
  assert.ok((await page.locator("ol.history").textContent()).includes("order.return_received"));
  await shot("order-returned");
  step("asked for a return and received it, not restocked, refunded, from the order's page");

  // On a phone: nothing wider than the screen but the tables, which scroll in their box.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, storageState: await context.storageState() });
  for (const route of ["/console", "/console/orders", `/console/orders/${ana.id}`, `/console/orders/${bea.id}`, "/console/jobs", "/console/queues", "/console/webhooks", "/console/audit"]) {
    await phone.goto(`${base}${route}`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${route} fits a phone (${overflow}px too wide)`);
  }
  await phone.goto(`${base}/console`);
  await phone.screenshot({ path: path.join(SHOTS, "overview-phone.png"), fullPage: true });
  await phone.close();
  step("every page fits a phone");

  // Sign out: the browser is sent to sign-in from then on.
  await page.click("header button:has-text('Sign out')");
  await page.waitForURL(/\/console\/sign-in\?notice=signed_out$/);
  await page.goto(`${base}/console/jobs`);
  assert.match(page.url(), /\/console\/sign-in\?next=%2Fconsole%2Fjobs/);
  step("signed out; the console sends the browser to sign-in");
  console.log(`console flows passed; screenshots in ${SHOTS}`);
} catch (error) {
  await page.screenshot({ path: path.join(WORK, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`console flows FAILED (logs and a screenshot in ${WORK}):`, error);
  process.exitCode = 1;
} finally {
  await browser.close();
  hooks.close();
  for (const child of children) child.kill("SIGTERM");
}
