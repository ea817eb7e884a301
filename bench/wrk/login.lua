-- POST /api/v1/login/access-token with the form body the OAuth2 password flow sends.
-- The credentials come from the environment (BENCH_USERNAME, BENCH_PASSWORD), already form-encoded.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "username=" .. os.getenv("BENCH_USERNAME") .. "&password=" .. os.getenv("BENCH_PASSWORD")
