-- wrk script of benchmarks/serving.py and deep_serving.py: POSTs the JSON bodies of WRK_BODIES (one per line)
-- to WRK_PATH in turn, or the one binary body of WRK_BODY (an Open Inference Protocol request with the
-- binary tensor extension, whose JSON header is WRK_HEADER_LENGTH bytes), and prints one JSON object of the
-- figures at the end (wrk's own summary is not parsed).
local bodies = {}
local counter = 0

init = function(args)
  local single = os.getenv("WRK_BODY")
  if single then
    local file = io.open(single, "rb")
    local body = file:read("*a")
    file:close()
    bodies[1] = wrk.format("POST", os.getenv("WRK_PATH"), {["Content-Type"] = "application/octet-stream",
      ["Inference-Header-Content-Length"] = os.getenv("WRK_HEADER_LENGTH")}, body)
    return
  end
  for line in io.lines(os.getenv("WRK_BODIES")) do
    bodies[#bodies + 1] = wrk.format("POST", os.getenv("WRK_PATH"), {["Content-Type"] = "application/json"}, line)
  end
end

request = function()
  counter = counter + 1
  return bodies[(counter % #bodies) + 1]
end

done = function(summary, latency, requests)
  local over = 0
  for i = 1, #latency do
    local value, count = latency(i)  -- the i-th distinct latency (us) and how many requests took it
    if value > 10000 then over = over + count end
  end
  local e = summary.errors
  io.write(string.format(
    '\nWRK {"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, "p50_ms": %.3f, ' ..
    '"p99_ms": %.3f, "p999_ms": %.3f, "max_ms": %.3f, "over_10ms": %d}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, over))
end
