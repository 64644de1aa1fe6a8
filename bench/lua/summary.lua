-- Prints one machine-readable line at the end of a wrk run (latencies in microseconds).
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("WRKSTAT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
      summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
      latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
