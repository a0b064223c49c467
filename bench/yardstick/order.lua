-- The order-throughput yardstick shared across projects (../shared/yardsticks/orders), kept
-- here unchanged so that the scaling benchmark runs from a clean clone.
-- wrk script: POST /v1/orders with a fresh Idempotency-Key per request.
-- Env: ORDERLY_KEY (storefront key), ORDERLY_PRODUCTS (comma-separated product ids)
local key = os.getenv("ORDERLY_KEY")
local ids = {}
for id in string.gmatch(os.getenv("ORDERLY_PRODUCTS") or "", "[^,]+") do ids[#ids + 1] = id end
local n, prefix = 0, ""
-- Each wrk thread is its own Lua state: a per-thread prefix from /dev/urandom keeps keys unique
-- across threads (a counter alone repeats in every thread).
function init(args)
  local f = io.open("/dev/urandom", "rb")
  local raw = f:read(8); f:close()
  prefix = raw:gsub(".", function(c) return string.format("%02x", string.byte(c)) end)
end
request = function()
  n = n + 1
  local pid = ids[(n % #ids) + 1]
  local body = '{"customer":{"email":"c' .. n .. '@example.com","name":"Load"},"lines":[{"product_id":"' .. pid .. '","quantity":1}]}'
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key,
                   ["Idempotency-Key"] = prefix .. "-" .. n}
  return wrk.format("POST", "/v1/orders", headers, body)
end
local codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
