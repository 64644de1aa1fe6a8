-- GET <prefix><n>, n uniform in 1..N. wrk args: prefix N
local reqs, n = {}, 0
function init(args)
   local prefix = args[1] or "/items/"
   n = tonumber(args[2] or "10000")
   math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
   for i = 1, n do reqs[i] = wrk.format("GET", prefix .. i) end
end
function request() return reqs[math.random(n)] end
