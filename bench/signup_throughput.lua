-- wrk script for bench/signup_throughput.py.
--
--   wrk ... -s bench/signup_throughput.lua URL -- signup SLUG STRIDE
--   wrk ... -s bench/signup_throughput.lua URL -- health
--
-- "signup" POSTs a new signup per request to /api/v1/forums/SLUG/signups. Every request
-- has its own valid UK mobile number, +44 7400 NNNNNN with NNNNNN = thread * STRIDE +
-- request counter, so no two requests of one run share a phone. "health" GETs /healthz.
-- Responses are counted by status; the expected one (201 for signups, 200 for health) is
-- "ok", anything else "other". done() prints one line "BENCH_JSON {...}" for the caller.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1]
   counter = 0
   ok = 0
   other = 0
   codes = {}
   if mode == "signup" then
      expected = 201
      path = "/api/v1/forums/" .. args[2] .. "/signups"
      stride = tonumber(args[3])
      headers = { ["Content-Type"] = "application/json" }
   else
      expected = 200
      health = wrk.format("GET", "/healthz")
   end
end

local body_format = '{"name":"Bench listener %d","location":"Leeds, UK",'
   .. '"phone":"+44 7400 %06d","question":"Will the night buses come back?",'
   .. '"timezone":"Europe/London","sms_consent":true,"publish_consent":false}'

function request()
   if mode ~= "signup" then
      return health
   end
   local n = tid * stride + counter
   counter = counter + 1
   return wrk.format("POST", path, headers, string.format(body_format, n, n))
end

function response(status, headers, body)
   if status == expected then
      ok = ok + 1
   else
      other = other + 1
      codes[status] = (codes[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total_ok, total_other, sent, by_code = 0, 0, 0, {}
   for _, thread in ipairs(threads) do
      total_ok = total_ok + thread:get("ok")
      total_other = total_other + thread:get("other")
      sent = sent + thread:get("counter")
      for code, n in pairs(thread:get("codes")) do
         by_code[code] = (by_code[code] or 0) + n
      end
   end
   local parts = {}
   for code, n in pairs(by_code) do
      table.insert(parts, string.format('"%d":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"ok":%d,"other":%d,"other_by_status":{%s},"requests":%d,'
         .. '"signup_bodies_built":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,'
         .. '"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"p50":%d,'
         .. '"p90":%d,"p99":%d,"max":%d}}\n',
      total_ok, total_other, table.concat(parts, ","), summary.requests, sent,
      summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
