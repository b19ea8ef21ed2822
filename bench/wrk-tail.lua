-- wrk script for bench/tail.ts: cycles through the bearer tokens of TOKENS_FILE (one per
-- request) and prints one JSON line with the latency tail (p99.9 too, which wrk-report.lua lacks).
local tokens, n, i = {}, 0, 0
local file = os.getenv("TOKENS_FILE")
if file and file ~= "" then
  for line in io.lines(file) do
    n = n + 1
    tokens[n] = line
  end
end

request = function()
  if n == 0 then return wrk.request() end
  i = i + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[(i % n) + 1] })
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
