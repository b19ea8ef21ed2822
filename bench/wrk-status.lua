-- wrk script for runs whose answers are not all 2xx (bench/flood.ts): like wrk-report.lua
-- (per-request tokens from TOKENS_FILE, JSON summary) plus a count of each status class,
-- so 401s and 429s can be told apart.
local tokens = {}
local n = 0
local i = 0
local file = os.getenv("TOKENS_FILE")
if file and file ~= "" then
  for line in io.lines(file) do
    n = n + 1
    tokens[n] = line
  end
end

-- Each wrk thread runs its own Lua state; done() reads their counters through these handles.
local threads = {}
setup = function(thread) table.insert(threads, thread) end

s2xx, s401, s429, sother = 0, 0, 0, 0

request = function()
  if n == 0 then return wrk.request() end
  i = i + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[(i % n) + 1] })
end

response = function(status)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  else sother = sother + 1 end
end

done = function(summary, latency, requests)
  local c = { s2xx = 0, s401 = 0, s429 = 0, sother = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"s2xx":%d,"s401":%d,"s429":%d,"sother":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, c.s2xx, c.s401, c.s429, c.sother))
end
