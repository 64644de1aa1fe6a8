-- GET <prefix><tag>-<counter>: never the same key twice. wrk args: prefix
local prefix, tag, i = "/nostore/", "", 0
function init(args)
   prefix = args[1] or prefix
   math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
   tag = string.format("%x%x", os.time(), math.random(0, 0xffffff))
end
function request()
   i = i + 1
   return wrk.format("GET", prefix .. tag .. "-" .. i)
end
