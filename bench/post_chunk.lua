-- wrk script: POSTs the same chunk body over and over.
-- Environment: TOKEN, CONTENT_TYPE, BODY (file).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE")
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*all")
f:close()

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
