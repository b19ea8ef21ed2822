-- wrk script: optional per-request tokens from TOKENS_FILE, a JSON summary line on stdout, and,
-- with COUNT_STATUS=1, a count of answers by status class (401s and 429s told apart). The
-- per-response callback costs wrk time, so it is only installed when asked for.
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
local counting = os.getenv("COUNT_STATUS") == "1"

-- Each wrk thread runs its own Lua state; done() reads their counters through these handles.
local threads = {}
setup = function(thread) table.insert(threads, thread) end

request = function()
  if n == 0 then return wrk.request() end
  i = i + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[(i % n) + 1] })
end

if counting then
  s2xx, s401, s429, sother = 0, 0, 0, 0
  response = function(status)
    if status >= 200 and status < 300 then s2xx = s2xx + 1
    elseif status == 401 then s401 = s401 + 1
    elseif status == 429 then s429 = s429 + 1
    else sother = sother + 1 end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local counts = ""
  if counting then
    local c = { s2xx = 0, s401 = 0, s429 = 0, sother = 0 }
    for _, t in ipairs(threads) do
      for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
    end
    counts = string.format(',"s2xx":%d,"s401":%d,"s429":%d,"sother":%d', c.s2xx, c.s401, c.s429, c.sother)
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"non2xx":%d,"errors":%d%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.status, e.connect + e.read + e.write + e.timeout, counts))
end
