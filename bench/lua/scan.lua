-- Zipf (s = 1) requests over a hot set <prefix>1..N, with one one-time URL (/fill/scan-...) after
-- every K hot requests when K > 0; counts how many hot requests were hits (X-Cache: HIT).
-- Run it with -t1 -c1: the response that follows a request is that request's.
-- wrk args: prefix N K
local threads = {}
function setup(thread) table.insert(threads, thread) end

local prefix, n, every, cdf, count, lastHot, tag = "/items/", 1000, 0, {}, 0, true, ""
hotHits, hotTotal = 0, 0
function init(args)
   prefix = args[1] or prefix
   n = tonumber(args[2] or "1000")
   every = tonumber(args[3] or "0")
   math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
   tag = tostring(math.random(1e9))
   local sum = 0
   for i = 1, n do sum = sum + 1 / i end
   local acc = 0
   for i = 1, n do acc = acc + (1 / i) / sum; cdf[i] = acc end
end
local function zipf()
   local u, lo, hi = math.random(), 1, n
   while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
   end
   return lo
end
function request()
   count = count + 1
   if every > 0 and count % (every + 1) == 0 then
      lastHot = false
      return wrk.format("GET", "/fill/scan-" .. tag .. "-" .. count)
   end
   lastHot = true
   return wrk.format("GET", prefix .. zipf())
end
function response(status, headers, body)
   if lastHot then
      hotTotal = hotTotal + 1
      if headers["X-Cache"] == "HIT" then hotHits = hotHits + 1 end
   end
end
function done(summary, latency, requests)
   local hits, total = 0, 0
   for _, t in ipairs(threads) do hits = hits + t:get("hotHits"); total = total + t:get("hotTotal") end
   io.write(string.format("SCANSTAT hot_requests=%d hot_hits=%d hot_hit_ratio=%.4f\n", total, hits, hits / math.max(total, 1)))
end
