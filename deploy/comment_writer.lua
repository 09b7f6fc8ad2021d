-- Deploy demo: POST comments on one article through the balancer and count the
-- acknowledged ones (2xx) so the demo can check every one of them was stored.
-- Reads DEMO_TOKEN and DEMO_SLUG from the environment.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, lost, failed = 0, 0, 0
  path = "/api/articles/" .. os.getenv("DEMO_SLUG") .. "/comments"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Token " .. os.getenv("DEMO_TOKEN"),
  }
end

function request()
  return wrk.format("POST", path, headers, '{"comment": {"body": "written during the demo"}}')
end

-- 502 is nginx's answer for a write that was inside a replica when it died: not
-- replayed on the other (it may have run), so lost by design. Any other non-2xx
-- is a failure.
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status == 502 then lost = lost + 1
  else failed = failed + 1 end
end

function done(summary, latency, requests)
  local acknowledged, lost, refused = 0, 0, 0
  for _, thread in ipairs(threads) do
    acknowledged = acknowledged + thread:get("ok")
    lost = lost + thread:get("lost")
    refused = refused + thread:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'DEMO_JSON {"acknowledged": %d, "lost_502": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "requests": %d}\n',
    acknowledged, lost, refused, e.connect + e.read + e.write, e.timeout, summary.requests))
end
