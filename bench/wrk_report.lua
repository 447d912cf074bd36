-- wrk script for bench/run.py: POSTs the body in BENCH_BODY and prints one JSON line of results.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "sk-bench")
wrk.body = os.getenv("BENCH_BODY")

-- BENCH_UNIQUE: the placeholder in the body replaced by this run's id (BENCH_RUN) and a counter,
-- so every request differs, within a run and from every earlier run
local unique = os.getenv("BENCH_UNIQUE")
if unique then
  local run = os.getenv("BENCH_RUN") or ""
  local counter = 0
  request = function()
    counter = counter + 1
    return wrk.format(nil, nil, nil, (string.gsub(wrk.body, unique, run .. "-" .. tostring(counter))))
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
