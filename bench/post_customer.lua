-- POST /v1/customers with a fixed form body (the same request over and over).
wrk.method = "POST"
wrk.path = "/v1/customers"
wrk.body = "email=bench%40example.com&name=Bench&metadata[run]=1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local dir = os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/stats.lua")
