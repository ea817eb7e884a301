-- GET /api/v1/items/ with a different `limit` on every request, so every page is a cache miss
-- (the app runs with CACHE_TTL_SHORT=1; a key comes round again only after its entry expired).
-- `limit` runs over 20..1000: the user owns 20 items, so every response holds the same 20 items.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local threads = 0

function setup(thread)
  thread:set("offset", threads * 491)
  threads = threads + 1
end

local counter = 0

function request()
  counter = counter + 1
  local limit = 20 + (offset + counter) % 981
  return wrk.format("GET", "/api/v1/items/?skip=0&limit=" .. limit)
end
