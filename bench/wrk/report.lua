-- wrk `done` hook shared by the bench scripts: one machine-readable line after wrk's own report.
-- Latencies are microseconds (wrk's unit); p95 is not in wrk's --latency table, so it is here.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "p50": %d, "p75": %d, "p90": %d, '
      .. '"p95": %d, "p99": %d, "max": %d, "mean": %.1f, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
