-- The one wrk script of `python -m bench`; bench/wrk.py sets its environment.
--   BENCH_MODE     get      the URL as is (static request)
--                  refresh  POST {"refreshToken": ...}: every request spends a token never sent before
--                  login    POST {"emailOrUsername": ..., "password": ...}, cycling through accounts
--   BENCH_DATA     refresh: one token a line; login: "name<TAB>password" lines
--   BENCH_THREADS  wrk's -t: thread n takes lines n, n+t, n+2t, ... of BENCH_DATA
--
-- Refresh tokens rotate: each 200 answer sets the session's next token in its Set-Cookie, which
-- joins the back of this thread's queue, so a pool of a few sessions per connection lasts a whole
-- run and no token is ever presented twice (a reuse would revoke its session and show as 401).
-- done() prints one "BENCH_RESULT {json}" line: latency percentiles, wrk's socket errors, the
-- status codes seen and the requests sent with no token left ("starved").

local mode = os.getenv("BENCH_MODE") or "get"
local data_path = os.getenv("BENCH_DATA")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local json_headers = { ["Content-Type"] = "application/json" }

local threads = {}
local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

statuses = {}
starved = 0

local queue, head, tail = {}, 1, 0

local function push(value)
  tail = tail + 1
  queue[tail] = value
end

local function pop()
  if head > tail then
    return nil
  end
  local value = queue[head]
  queue[head] = nil
  head = head + 1
  return value
end

function init(args)
  if mode == "get" then
    return
  end
  local index = 0
  for line in io.lines(data_path) do
    if line ~= "" then
      if index % nthreads == tid then
        if mode == "login" then
          local name, password = line:match("^([^\t]+)\t(.+)$")
          push('{"emailOrUsername":"' .. name .. '","password":"' .. password .. '"}')
        else
          push(line)
        end
      end
      index = index + 1
    end
  end
end

if mode == "refresh" then
  function request()
    local token = pop()
    if token == nil then
      starved = starved + 1
      token = "none-left"
    end
    return wrk.format("POST", nil, json_headers, '{"refreshToken":"' .. token .. '"}')
  end
elseif mode == "login" then
  local next_body = 0
  function request()
    next_body = next_body % tail + 1
    return wrk.format("POST", nil, json_headers, queue[next_body])
  end
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if mode == "refresh" and status == 200 then
    local cookie = headers["Set-Cookie"] or headers["set-cookie"]
    local token = cookie and cookie:match("refreshToken=([^;]+)")
    if token then
      push(token)
    end
  end
end

function done(summary, latency, requests)
  local codes, starved_total = {}, 0
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses") or {}) do
      codes[code] = (codes[code] or 0) + count
    end
    starved_total = starved_total + (thread:get("starved") or 0)
  end
  local parts = {}
  for code, count in pairs(codes) do
    table.insert(parts, string.format('"%s":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%.0f,"p95_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":{%s},"starved":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ","), starved_total))
end
