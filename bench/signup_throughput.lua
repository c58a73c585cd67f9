-- wrk script for bench/signup_throughput.py.
--
--   wrk ... -s bench/signup_throughput.lua URL -- signup SLUG STRIDE
--   wrk ... -s bench/signup_throughput.lua URL -- health
--   wrk ... -s bench/signup_throughput.lua URL -- verify SLUG FILE THREADS CODE
--
-- "signup" POSTs a new signup per request to /api/v1/forums/SLUG/signups. Every request
-- has its own valid UK mobile number, +44 7400 NNNNNN with NNNNNN = thread * STRIDE +
-- request counter, so no two requests of one run share a phone. "health" GETs /healthz.
-- Responses are counted by status; the expected one (201 for signups, 200 for health) is
-- "ok", anything else "other". done() prints one line "BENCH_JSON {...}" for the caller.
--
-- "verify" (PHONEIN_VERIFY=sms with PHONEIN_CHALLENGE=pow) signs up the listener's way: a
-- signup POST with a solved challenge (202 with a verification_id), then the code POST to
-- /api/v1/verifications/ID (201). FILE holds one ready signup body per line, each with
-- its own number and an already solved challenge; thread t takes lines t, t + THREADS, ...
-- Every 202 queues its verification; a thread sends a queued code before a new signup.
-- CODE is the code the fake Verify sends every number. "ok" counts the 201s (complete
-- signups), "started" the 202s; running out of bodies is reported as "exhausted".

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
   started = 0
   exhausted = 0
   if mode == "verify" then
      expected = 201
      path = "/api/v1/forums/" .. args[2] .. "/signups"
      headers = { ["Content-Type"] = "application/json" }
      bodies = {}
      local every = tonumber(args[4])
      local i = 0
      for line in io.lines(args[3]) do
         if i % every == tid then
            table.insert(bodies, line)
         end
         i = i + 1
      end
      code_body = '{"code":"' .. args[5] .. '"}'
      waiting = {}
      health = wrk.format("GET", "/healthz")
   elseif mode == "signup" then
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
   if mode == "verify" then
      local id = table.remove(waiting)
      if id then
         return wrk.format("POST", "/api/v1/verifications/" .. id, headers, code_body)
      end
      counter = counter + 1
      local body = bodies[counter]
      if body == nil then
         exhausted = exhausted + 1
         return health
      end
      return wrk.format("POST", path, headers, body)
   end
   if mode ~= "signup" then
      return health
   end
   local n = tid * stride + counter
   counter = counter + 1
   return wrk.format("POST", path, headers, string.format(body_format, n, n))
end

function response(status, headers, body)
   if mode == "verify" and status == 202 then
      local id = string.match(body, '"verification_id":%s*"([^"]+)"')
      if id then
         started = started + 1
         table.insert(waiting, id)
         return
      end
   end
   if mode == "verify" and status == 200 and exhausted > 0 then
      return -- a health check sent only because the bodies ran out
   end
   if status == expected then
      ok = ok + 1
   else
      other = other + 1
      codes[status] = (codes[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total_ok, total_other, sent, by_code = 0, 0, 0, {}
   local total_started, total_exhausted = 0, 0
   for _, thread in ipairs(threads) do
      total_started = total_started + thread:get("started")
      total_exhausted = total_exhausted + thread:get("exhausted")
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
         .. '"signup_bodies_built":%d,"started":%d,"exhausted":%d,"duration_us":%d,'
         .. '"errors":{"connect":%d,"read":%d,'
         .. '"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"p50":%d,'
         .. '"p90":%d,"p99":%d,"max":%d}}\n',
      total_ok, total_other, table.concat(parts, ","), summary.requests, sent,
      total_started, total_exhausted,
      summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
