-- SPDX-License-Identifier: MIT
--
-- bench/webhook.lua: the wrk script of bench/run.sh. Every request is a new
-- change with its own delivery id and body, stamped with the time it was
-- sent (CLOCK_MONOTONIC ns, read through LuaJIT's ffi) in the customer's
-- `phone`, which concord maps to the CRM's `phone_number`, where
-- bench/sink.c reads it back.
--
-- Settings come from the environment:
--   BENCH_MODE     webhook (default): a shop customer webhook, as concord's
--                  quickstart receives it; contact: the CRM contact that
--                  concord would POST (to measure bench/sink.c itself)
--   BENCH_SECRET   when set, webhooks are signed like the quickstart shop:
--                  X-Shop-Timestamp and X-Shop-Signature: sha256=<hex of
--                  HMAC-SHA256 over "{timestamp}.{body}">, via libcrypto
--   BENCH_EVENT    customer.created (default) or customer.updated
--   BENCH_RUN      a tag that makes ids unique across runs (default r)
--   BENCH_QUOTA    stop after this many changes in all (0: run for -d)
--   BENCH_THREADS  wrk's -t, to split the quota between threads
--
-- done() prints one line that run.sh reads:
--   BENCH requests=N duration_us=D non2xx=E sockerr=S p50_us=X p99_us=Y
-- requests are the answered requests, non2xx the answers of 400 and up
-- (in quota mode these include the 404s of GET /bench-idle, see below).
-- In quota mode each thread prints, when all of its share was answered:
--   BENCH_THREAD tid=T answered=N failed=F start_ns=S end_ns=E statuses=202:N,...

local ffi = require("ffi")

ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct bench_timespec *ts);
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]]

local CLOCK_MONOTONIC = 1

local mode = os.getenv("BENCH_MODE") or "webhook"
local secret = os.getenv("BENCH_SECRET") or ""
local event = os.getenv("BENCH_EVENT") or "customer.created"
local run = os.getenv("BENCH_RUN") or "r"
local quota = tonumber(os.getenv("BENCH_QUOTA") or "0") or 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1

local crypto, sha256
if secret ~= "" then
  local ok, lib = pcall(ffi.load, "crypto")
  if not ok then
    lib = ffi.load("libcrypto.so.3")
  end
  crypto = lib
  sha256 = crypto.EVP_sha256()
end

local ts = ffi.new("struct bench_timespec")
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
local hexbuf = ffi.new("char[64]")
local hexdigits = "0123456789abcdef"
local hexbyte = ffi.new("char[16]", hexdigits)

local function now_ns()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return string.format("%d%09d", tonumber(ts.tv_sec), tonumber(ts.tv_nsec))
end

local function sign(text)
  crypto.HMAC(sha256, secret, #secret, text, #text, md, mdlen)
  for i = 0, 31 do
    local b = md[i]
    hexbuf[2 * i] = hexbyte[bit.rshift(b, 4)]
    hexbuf[2 * i + 1] = hexbyte[bit.band(b, 15)]
  end
  return ffi.string(hexbuf, 64)
end

-- About 1 KiB per webhook, as in shared/LIMITS.md.
local note = string.rep("Prefers e-mail; ships to the warehouse door. ", 14)

local webhook_fmt = '{"event":"%s","customer":{"id":"%s","first_name":"Ada",' ..
  '"last_name":"Lovelace %s","email":"ada.%s@example.com","phone":"%s",' ..
  '"state":"open","balance":"12.50","tags":["vip","newsletter"],' ..
  '"address":{"line1":"12 St James\'s Square","city":"London",' ..
  '"postcode":"SW1Y 4JH","country":"GB"},"note":"%s"}}'

local contact_fmt = '{"contact_email":"ada.%s@example.com","full_name":"Ada Lovelace %s",' ..
  '"phone_number":"%s","lifecycle":"active","balance":"12.50","is_vip":true,' ..
  '"source":"concord"}'

-- Per thread state (each wrk thread runs its own copy of this script;
-- setup() sets the global `tid` in each before init()).
local my_tid = 0
local sent = 0
local my_quota = 0
local my_limit = 0
local idle_req

local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  my_tid = tid or 0
  if quota > 0 then
    my_quota = math.floor(quota / nthreads)
    if my_tid < quota % nthreads then
      my_quota = my_quota + 1
    end
  end
  -- wrk 4.1 calls request() once on the first thread's script to check it
  -- (script_verify_request), after init() and before any connection: that
  -- one is never sent, so the first thread makes one more.
  my_limit = my_quota + (my_tid == 0 and 1 or 0)
  idle_req = wrk.format("GET", "/bench-idle")
end

function request()
  if quota > 0 and sent >= my_limit then
    return idle_req
  end
  sent = sent + 1
  local id = string.format("%s-%d-%d", run, my_tid, sent)
  local stamp = now_ns()
  if mode == "contact" then
    return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
      string.format(contact_fmt, id, id, stamp))
  end
  local body = string.format(webhook_fmt, event, id, id, id, stamp, note)
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Shop-Delivery"] = id .. "-" .. event,
  }
  if secret ~= "" then
    local t = tostring(os.time())
    headers["X-Shop-Timestamp"] = t
    headers["X-Shop-Signature"] = "sha256=" .. sign(t .. "." .. body)
  end
  return wrk.format("POST", nil, headers, body)
end

if quota > 0 then
  -- A thread stops once every change of its share was answered; until
  -- then its idle connections ask GET /bench-idle, which both concord and
  -- the sink answer 404 at once (no webhook is ever answered 404). wrk's
  -- main thread still sleeps for -d: run.sh interrupts it.
  local answered, failed, start_ns = 0, 0, nil
  local statuses = {}
  local first_request = request
  request = function()
    if start_ns == nil then
      start_ns = now_ns()
    end
    return first_request()
  end
  function response(status, headers, body)
    if status == 404 then
      return
    end
    answered = answered + 1
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 300 then
      failed = failed + 1
    end
    if answered == my_quota then
      local counts = {}
      for code, n in pairs(statuses) do
        counts[#counts + 1] = code .. ":" .. n
      end
      table.sort(counts)
      io.write(string.format(
        "BENCH_THREAD tid=%d answered=%d failed=%d start_ns=%s end_ns=%s statuses=%s\n",
        my_tid, answered, failed, start_ns, now_ns(), table.concat(counts, ",")))
      io.flush()
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d sockerr=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
