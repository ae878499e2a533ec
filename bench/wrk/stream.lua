-- wrk script: POST a streaming chat completion (10 chunks + usage + [DONE], no delay).
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "x")
-- extra headers, "Name: value|Name2: value2" (a peer gateway told where the upstream is, e.g. Portkey)
for h in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local k, v = string.match(h, "^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":16,"stream":true}'

-- one JSON line at the end (the last line of output), picked up by bench/suite.sh
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), errs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
