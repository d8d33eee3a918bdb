-- wrk script: POST {"amount":"1.00"} to /api/v1/escrows/<id>/deposit, or, with
-- BENCH_MODE=get, GET /api/v1/escrows/<id> (an audited read: one audit insert).
-- Environment (set by bench/run.sh):
--   BENCH_API_KEY     the sender's API key (Bearer)
--   BENCH_ESCROW_IDS  the escrow ids, separated by spaces
--   BENCH_NONCE       unique per wrk invocation (warm-up and measured run differ)
--   BENCH_THREADS     wrk's -t (spreads the threads' starting escrows)
-- Every request has a unique Idempotency-Key: <nonce>-<thread>-<counter>.
-- Escrows are taken round-robin, each thread from its own offset, so the
-- 16 requests in flight hit different rows most of the time, while each
-- escrow still gets hundreds of deposits during the run.
-- Non-2xx responses are counted per status; done() prints one line
-- "bench-statuses: 2xx=<n> non2xx=<n> [<status>=<n> ...]" for bench/run.sh.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  for id in string.gmatch(os.getenv("BENCH_ESCROW_IDS") or "", "%d+") do
    ids[#ids + 1] = id
  end
  if #ids == 0 then error("BENCH_ESCROW_IDS is empty") end
  nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
  -- Each thread walks all escrows from its own offset (BENCH_THREADS = wrk -t).
  offset = math.floor(#ids / math.max(tonumber(os.getenv("BENCH_THREADS") or "1"), 1)) * (tid - 1)
  counter = 0
  ok = 0
  bad = 0
  statuses = {}
  get_mode = os.getenv("BENCH_MODE") == "get"
  wrk.method = get_mode and "GET" or "POST"
  wrk.body = (not get_mode) and '{"amount":"1.00"}' or nil
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "")
end

function request()
  counter = counter + 1
  local id = ids[(offset + counter - 1) % #ids + 1]
  if get_mode then
    return wrk.format(nil, "/api/v1/escrows/" .. id)
  end
  wrk.headers["Idempotency-Key"] = nonce .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, "/api/v1/escrows/" .. id .. "/deposit")
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    statuses[status] = (statuses[status] or 0) + 1
    if bad <= 3 then
      io.stderr:write("bench: HTTP " .. status .. ": " .. string.sub(body or "", 1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, by_status = 0, 0, {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_bad = total_bad + (t:get("bad") or 0)
    local s = t:get("statuses") or {}
    for code, count in pairs(s) do by_status[code] = (by_status[code] or 0) + count end
  end
  local line = "bench-statuses: 2xx=" .. total_ok .. " non2xx=" .. total_bad
  for code, count in pairs(by_status) do line = line .. " " .. code .. "=" .. count end
  io.write(line .. "\n")
end
