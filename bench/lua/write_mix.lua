-- The write mix: create an article, favorite an article, comment on an article,
-- in turn, as several seeded users. Reads BENCH_TOKENS (comma-separated JWTs)
-- and BENCH_SLUGS (a file of slugs, one a line) from the environment; with
-- BENCH_WRITE_KIND (create, favorite or comment) only that write.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local tokens, slugs, counter, prefix = {}, {}, 0, ""
local only = ({create = 0, favorite = 1, comment = 2})[os.getenv("BENCH_WRITE_KIND") or ""]

function init(args)
  for token in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do
    table.insert(tokens, token)
  end
  for line in io.lines(os.getenv("BENCH_SLUGS")) do
    table.insert(slugs, line)
  end
  prefix = string.format("%s-%d", os.getenv("BENCH_RUN_ID") or "run", thread_id or 0)
  math.randomseed(os.time() + (thread_id or 0))
end

function request()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Token " .. tokens[(counter % #tokens) + 1],
  }
  local slug = slugs[math.random(#slugs)]
  local kind = only or counter % 3
  if kind == 0 then
    local body = string.format(
      '{"article": {"title": "Benchmark %s %d", "description": "Written by wrk", ' ..
      '"body": "A body long enough to look like one.", "tagList": ["benchmark", "wrk"]}}',
      prefix, counter)
    return wrk.format("POST", "/api/articles", headers, body)
  elseif kind == 1 then
    return wrk.format("POST", "/api/articles/" .. slug .. "/favorite", headers)
  end
  return wrk.format("POST", "/api/articles/" .. slug .. "/comments", headers,
    '{"comment": {"body": "A comment from the benchmark."}}')
end
