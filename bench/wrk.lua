-- The one wrk script of `python -m bench`; bench/wrk.py sets its environment.
--   BENCH_MODE     get      the URL as is (static request), with BENCH_AUTHORIZATION (if set) as the
--                           Authorization header (e.g. "Bearer <access token>" for userinfo)
--                  refresh  POST {"refreshToken": ...}: every request spends a token never sent before
--                  oauth-refresh  POST grant_type=refresh_token&refresh_token=... to the OAuth token
--                           endpoint with BENCH_AUTHORIZATION (client authentication): every request
--                           spends a token never sent before
--                  login    POST {"emailOrUsername": ..., "password": ...}, cycling through accounts
--                  form     POST the same application/x-www-form-urlencoded body every time, with
--                           BENCH_AUTHORIZATION (if set) as the Authorization header (OAuth endpoints)
--   BENCH_DATA     refresh, oauth-refresh: one token a line; login: "name<TAB>password" lines; form: the body
--   BENCH_AUTHORIZATION  get, form, oauth-refresh: the Authorization header's value, e.g.
--                  "Basic base64(id:secret)"
--   BENCH_THREADS  wrk's -t: thread n takes lines n, n+t, n+2t, ... of BENCH_DATA
--   BENCH_EXPECT   the status every answer must have (default 200); any other is counted as an error
--   BENCH_EXPECT_BODY  a Lua pattern that an answer with BENCH_EXPECT must match (e.g. '"active"%s*:%s*true'),
--                  or unset; a miss is counted as an error ("bad_body")
--
-- Refresh tokens rotate: each 200 answer carries the session's next token (refresh: in its
-- Set-Cookie; oauth-refresh: as "refresh_token" in the JSON body), which joins the back of this
-- thread's queue, so a pool of a few sessions per connection lasts a whole run and no token is ever
-- presented twice (a reuse would revoke its session and show as 401, or 400 invalid_grant).
-- done() prints one "BENCH_RESULT {json}" line: latency percentiles, wrk's socket errors, the
-- status codes seen, the answers that were not BENCH_EXPECT ("unexpected", by status) or did not
-- match BENCH_EXPECT_BODY ("bad_body"), and the requests sent with no token left ("starved").

local mode = os.getenv("BENCH_MODE") or "get"
local data_path = os.getenv("BENCH_DATA")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local expect_body = os.getenv("BENCH_EXPECT_BODY")
if expect_body == "" then
  expect_body = nil
end
local json_headers = { ["Content-Type"] = "application/json" }
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization == "" then
  authorization = nil
end
local form_headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = authorization }

local threads = {}
local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

statuses = {}
unexpected = {}
bad_body = 0
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
  if mode == "form" then
    local file = assert(io.open(data_path, "r"))
    local body = file:read("*a"):gsub("%s+$", "")
    file:close()
    form_request = wrk.format("POST", nil, form_headers, body)
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

local function next_token()
  local token = pop()
  if token == nil then
    starved = starved + 1
    token = "none-left"
  end
  return token
end

if mode == "get" then
  -- no request(): wrk sends one pre-built request (with this header, if any) every time
  wrk.headers["Authorization"] = authorization
elseif mode == "refresh" then
  function request()
    return wrk.format("POST", nil, json_headers, '{"refreshToken":"' .. next_token() .. '"}')
  end
elseif mode == "oauth-refresh" then
  function request()
    -- a refresh token is "<uuid>.<base64url>": nothing in it needs form encoding
    return wrk.format("POST", nil, form_headers, "grant_type=refresh_token&refresh_token=" .. next_token())
  end
elseif mode == "login" then
  local next_body = 0
  function request()
    next_body = next_body % tail + 1
    return wrk.format("POST", nil, json_headers, queue[next_body])
  end
elseif mode == "form" then
  function request()
    return form_request -- built once in init(): the same bytes every time
  end
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status ~= expect then
    unexpected[key] = (unexpected[key] or 0) + 1
  elseif expect_body and not (body and body:find(expect_body)) then
    bad_body = bad_body + 1
  end
  if mode == "refresh" and status == 200 then
    local cookie = headers["Set-Cookie"] or headers["set-cookie"]
    local token = cookie and cookie:match("refreshToken=([^;]+)")
    if token then
      push(token)
    end
  elseif mode == "oauth-refresh" and status == 200 then
    local token = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      push(token)
    end
  end
end

local function add_counts(into, counts)
  for code, count in pairs(counts or {}) do
    into[code] = (into[code] or 0) + count
  end
end

local function json_counts(counts)
  local parts = {}
  for code, count in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', code, count))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local codes, wrong, bad_body_total, starved_total = {}, {}, 0, 0
  for _, thread in ipairs(threads) do
    add_counts(codes, thread:get("statuses"))
    add_counts(wrong, thread:get("unexpected"))
    bad_body_total = bad_body_total + (thread:get("bad_body") or 0)
    starved_total = starved_total + (thread:get("starved") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%.0f,"p95_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":%s,"unexpected":%s,"bad_body":%d,"starved":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, json_counts(codes), json_counts(wrong), bad_body_total, starved_total))
end
