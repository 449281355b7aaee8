-- wrk script for benchmarks/bench_serve.py: 1-image POST /v1/generate requests, each a new seed.
-- wrk ... -s serve_generate.lua URL -- MODEL FIRST_SEED CATEGORY...
-- At the end it prints one JSON line: latency percentiles (ms), requests, non-2xx answers, socket errors.
local model, seed, categories = nil, 0, {}

function init(args)
  model, seed = args[1], tonumber(args[2])
  for i = 3, #args do categories[#categories + 1] = args[i] end
end

function request()
  seed = seed + 1
  local body = string.format('{"model": "%s", "category": "%s", "n": 1, "seed": %d}', model, categories[(seed % #categories) + 1], seed)
  return wrk.format("POST", "/v1/generate", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
