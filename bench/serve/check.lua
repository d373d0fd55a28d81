-- wrk script for bench/serve/run.sh check: GET /v1/check rotating through an address file.
--
--   wrk -t2 -c64 -d30s --latency -s bench/serve/check.lua http://127.0.0.1:PORT -- FILE [fresh]
--   wrk -t2 -c64 -d30s --latency -s bench/serve/check.lua http://127.0.0.1:PORT -- healthz
--
-- Every thread builds all the requests once (no per-request string work in Lua), then
-- sends them in turn, each thread starting at its own offset so that threads do not ask
-- for the same address at the same moment. "fresh" adds fresh=1 (skip the result cache);
-- "healthz" instead of FILE asks GET /healthz only.
-- At the end one line "WRKJSON {...}" with requests/s and latency percentiles (ms).

local n_threads = 0

function setup(thread)
  n_threads = n_threads + 1
  thread:set("tid", n_threads)
end

local reqs = {}
local i = 0

function init(args)
  local file, mode = args[1], args[2]
  if file == "healthz" then
    reqs[1] = wrk.format("GET", "/healthz")
    return
  end
  local suffix = (mode == "fresh") and "&fresh=1" or ""
  for line in io.lines(file) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("GET", "/v1/check?email=" .. line .. suffix)
    end
  end
  -- spread the threads over the list (golden-ratio offsets: halves for 2 threads)
  i = math.floor((((tid - 1) * 0.5) % 1) * #reqs)
  if tid > 2 then i = math.floor((((tid - 1) * 0.618034) % 1) * #reqs) end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"requests_per_s":%.1f,' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"bytes":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, summary.bytes))
end
