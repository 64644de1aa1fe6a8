-- GET <prefix><n>, n = 1, 2, ... N, 1, 2, ... (fills every key once). wrk args: prefix N
local prefix, n, i = "/items/", 10000, 0
function init(args)
   prefix = args[1] or prefix
   n = tonumber(args[2] or "10000")
end
function request()
   i = i % n + 1
   return wrk.format("GET", prefix .. i)
end
