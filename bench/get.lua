-- GET scenarios: the URL (path and query) comes from the wrk command line;
-- the Authorization header from -H. This script only counts statuses.
local dir = os.getenv("BENCH_DIR") or "bench"
dofile(dir .. "/stats.lua")
