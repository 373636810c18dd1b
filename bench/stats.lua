-- Shared by the bench/*.lua scripts: counts responses by HTTP status in every
-- wrk thread, keeps the status and body of the first non-2xx response, and
-- prints one machine-readable line at the end:
--   BENCH_STATUS total=N non2xx=N codes=200:N,400:N sample_status=N sample_body=...
-- (Defining response() makes wrk parse every body; that costs wrk a little CPU.)

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sample_status = 0
  sample_body = ""
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and sample_status == 0 then
    sample_status = status
    sample_body = body or ""
  end
end

function done(summary, latency, requests)
  local agg, total, bad = {}, 0, 0
  local s_status, s_body = 0, ""
  for _, t in ipairs(threads) do
    local st = t:get("statuses") or {}
    for code, n in pairs(st) do
      agg[code] = (agg[code] or 0) + n
      total = total + n
      if code < 200 or code > 299 then bad = bad + n end
    end
    local ts = t:get("sample_status") or 0
    if s_status == 0 and ts ~= 0 then
      s_status = ts
      s_body = t:get("sample_body") or ""
    end
  end
  local keys = {}
  for code in pairs(agg) do table.insert(keys, code) end
  table.sort(keys)
  local parts = {}
  for _, code in ipairs(keys) do table.insert(parts, code .. ":" .. agg[code]) end
  s_body = string.gsub(string.sub(s_body, 1, 400), "%s+", " ")
  io.write(string.format("BENCH_STATUS total=%d non2xx=%d codes=%s sample_status=%d sample_body=%s\n",
    total, bad, table.concat(parts, ","), s_status, s_body))
end
