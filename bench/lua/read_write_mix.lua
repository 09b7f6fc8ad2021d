-- The 95/5 mix: nineteen hot reads for every write. Reads cycle through the
-- article list (anonymous and signed in), the tag filter, the feed, one of a
-- few articles, its comments and the tags; writes cycle through creating an
-- article, favoriting and commenting. Counts the X-Cache answers (hit, miss,
-- off) and prints them with wrk's numbers as one BENCH_JSON line.
-- Reads BENCH_TOKENS, BENCH_SLUGS, BENCH_TAG and BENCH_RUN_ID from the environment.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local tokens, slugs, counter, prefix, tag = {}, {}, 0, "", ""
hits, misses, off = 0, 0, 0

function init(args)
  for token in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do
    table.insert(tokens, token)
  end
  for line in io.lines(os.getenv("BENCH_SLUGS")) do
    if #slugs < 20 then table.insert(slugs, line) end
  end
  tag = os.getenv("BENCH_TAG")
  prefix = string.format("%s-%d", os.getenv("BENCH_RUN_ID") or "run", thread_id or 0)
  math.randomseed(os.time() + (thread_id or 0))
end

local function signed_in(n)
  return { ["Authorization"] = "Token " .. tokens[(n % #tokens) + 1] }
end

function request()
  counter = counter + 1
  local slug = slugs[math.random(#slugs)]
  if counter % 20 == 0 then
    local headers = signed_in(counter)
    headers["Content-Type"] = "application/json"
    local kind = (counter / 20) % 3
    if kind == 0 then
      local body = string.format(
        '{"article": {"title": "Mix %s %d", "description": "Written by wrk", ' ..
        '"body": "A body long enough to look like one.", "tagList": ["benchmark"]}}',
        prefix, counter)
      return wrk.format("POST", "/api/articles", headers, body)
    elseif kind == 1 then
      return wrk.format("POST", "/api/articles/" .. slug .. "/favorite", headers)
    end
    return wrk.format("POST", "/api/articles/" .. slug .. "/comments", headers,
      '{"comment": {"body": "A comment from the benchmark."}}')
  end
  local kind = counter % 7
  if kind == 0 then return wrk.format("GET", "/api/articles") end
  if kind == 1 then return wrk.format("GET", "/api/articles", signed_in(0)) end
  if kind == 2 then return wrk.format("GET", "/api/articles?tag=" .. tag) end
  if kind == 3 then return wrk.format("GET", "/api/articles/feed", signed_in(0)) end
  if kind == 4 then return wrk.format("GET", "/api/articles/" .. slug) end
  if kind == 5 then return wrk.format("GET", "/api/articles/" .. slug .. "/comments") end
  return wrk.format("GET", "/api/tags")
end

function response(status, headers, body)
  local state = headers["X-Cache"]
  if state == "hit" then hits = hits + 1
  elseif state == "miss" then misses = misses + 1
  elseif state == "off" then off = off + 1 end
end

function done(summary, latency, requests)
  local total_hits, total_misses, total_off = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_hits = total_hits + thread:get("hits")
    total_misses = total_misses + thread:get("misses")
    total_off = total_off + thread:get("off")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "cache_hits": %d, "cache_misses": %d, "cache_off": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    total_hits, total_misses, total_off))
end
