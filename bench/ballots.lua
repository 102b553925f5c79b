-- wrk script for bench/ballots.py: POST distinct ballots, or GET a path, for a fixed window.
--
--   wrk -t T -c C -d <window+grace>s -s bench/ballots.lua URL -- MODE WINDOW_S T TOKENS PATH SLUGS [RATE]
--
-- MODE     "ballot" (POST {"token", "choices"} to PATH) or "get" (GET PATH)
-- WINDOW_S seconds during which new requests are sent; after it each connection waits, so
--          every request that was sent is answered before wrk stops (run wrk for longer)
-- T        number of wrk threads (-t); thread i uses token lines i, i+T, i+2T, ... so no
--          token is ever sent twice
-- TOKENS   file with one signed voter token per line (ballot mode)
-- SLUGS    comma-separated project slugs; ballots cycle through them
-- RATE     open loop: requests per second offered in all (0 or absent: closed loop, each
--          connection sends its next request as soon as the last is answered). Run with
--          -t equal to -c: each thread then drives one connection, sending on a fixed
--          schedule (RATE/T per second, threads staggered), and a request's latency is
--          taken from the moment the schedule said to send it, not from when it went out,
--          so a slow answer that delays the next send is counted against the server
--          (no coordinated omission), as wrk2 does.
--
-- done() prints one line "BENCH_RESULT {json}" with status counts and latency percentiles
-- (wrk's own, from when each request went out; in open loop also "scheduled_us", from
-- when it was due).

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- setup/done run in their own Lua state; count threads there and number them.
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local mode, path, deadline
local tokens = {}
next_token = 1
local slugs = {}
local body_headers = { ["Content-Type"] = "application/json" }

statuses = {}
-- Open loop: the schedule of this thread's one connection, and each answer's latency from it.
local interval, next_at, due = 0, 0, 0
scheduled = {}
sent, answered = 0, 0
exhausted = false
first_sent, last_answer = 0, 0

local function split(text, sep)
  local out = {}
  for part in string.gmatch(text, "([^" .. sep .. "]+)") do
    table.insert(out, part)
  end
  return out
end

function init(args)
  mode = args[1]
  local window = tonumber(args[2])
  local nthreads = tonumber(args[3])
  local token_file = args[4]
  path = args[5]
  slugs = split(args[6] or "", ",")
  local rate = tonumber(args[7] or "0") or 0
  if rate > 0 then
    interval = nthreads / rate
    next_at = now() + interval * thread_index / nthreads
  end
  if mode == "ballot" then
    local index = 0
    for line in io.lines(token_file) do
      if line ~= "" then
        if index % nthreads == thread_index then
          table.insert(tokens, line)
        end
        index = index + 1
      end
    end
  end
  deadline = now() + window
end

function delay()
  -- Past the window, or out of tokens: park this connection until wrk stops.
  if now() >= deadline then
    return 3600 * 1000
  end
  if mode == "ballot" and next_token > #tokens then
    exhausted = true
    return 3600 * 1000
  end
  if interval > 0 then
    return math.max(0, math.floor((next_at - now()) * 1000))
  end
  return 0
end

function request()
  local t = now()
  if first_sent == 0 then
    first_sent = t
  end
  if interval > 0 then
    -- Due at next_at; one sent early (the first, at connect) counts from when it went out.
    due = math.min(next_at, t)
    next_at = next_at + interval
  end
  sent = sent + 1
  if mode ~= "ballot" then
    return wrk.format("GET", path)
  end
  local token = tokens[next_token]
  next_token = next_token + 1
  local slug = slugs[(next_token % #slugs) + 1]
  local body = '{"token":"' .. token .. '","choices":["' .. slug .. '"]}'
  return wrk.format("POST", path, body_headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  last_answer = now()
  if interval > 0 then
    scheduled[#scheduled + 1] = (last_answer - due) * 1e6
  end
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function json_number(value)
  return string.format("%.3f", value)
end

function done(summary, latency, requests)
  local counts, total_sent, total_answered = {}, 0, 0
  local started, finished, any_exhausted = nil, 0, false
  local stripe_used = 0 -- tokens taken by the busiest thread from its stripe
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
    total_sent = total_sent + thread:get("sent")
    total_answered = total_answered + thread:get("answered")
    local first = thread:get("first_sent")
    if first > 0 and (started == nil or first < started) then
      started = first
    end
    finished = math.max(finished, thread:get("last_answer"))
    any_exhausted = any_exhausted or thread:get("exhausted")
    stripe_used = math.max(stripe_used, thread:get("next_token") - 1)
  end
  local waits = {}
  for _, thread in ipairs(threads) do
    for _, v in ipairs(thread:get("scheduled")) do
      waits[#waits + 1] = v
    end
  end
  table.sort(waits)
  local function pct(p)
    if #waits == 0 then
      return 0
    end
    return waits[math.max(1, math.ceil(#waits * p / 100))]
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', status, n))
  end
  local e = summary.errors
  local fields = {
    '"statuses":{' .. table.concat(parts, ",") .. "}",
    -- wrk calls request() once before the run to check the script; that one is never sent.
    '"sent":' .. (total_sent - 1),
    '"answered":' .. total_answered,
    '"elapsed_s":' .. json_number(started and (finished - started) or 0),
    '"exhausted":' .. tostring(any_exhausted),
    '"stripe_used":' .. stripe_used,
    '"requests":' .. summary.requests,
    string.format(
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout
    ),
    '"latency_us":{'
      .. '"mean":' .. json_number(latency.mean)
      .. ',"max":' .. latency.max
      .. ',"p50":' .. latency:percentile(50)
      .. ',"p90":' .. latency:percentile(90)
      .. ',"p95":' .. latency:percentile(95)
      .. ',"p99":' .. latency:percentile(99)
      .. ',"p99.9":' .. latency:percentile(99.9)
      .. "}",
    string.format(
      '"scheduled_us":{"n":%d,"p50":%.0f,"p90":%.0f,"p95":%.0f,"p99":%.0f,"p99.9":%.0f,"max":%.0f}',
      #waits, pct(50), pct(90), pct(95), pct(99), pct(99.9), pct(100)
    ),
  }
  io.write("BENCH_RESULT {" .. table.concat(fields, ",") .. "}\n")
end
