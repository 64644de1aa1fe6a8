-- GET <prefix><n> for n = START+1 ... LAST, then LAST again (fills a numbered range once,
-- resumable across runs). wrk args: prefix START LAST
local prefix, i, last = "/fill/p", 0, 100000
function init(args)
   prefix = args[1] or prefix
   i = tonumber(args[2] or "0")
   last = tonumber(args[3] or "100000")
end
function request()
   if i < last then i = i + 1 end
   return wrk.format("GET", prefix .. i)
end
