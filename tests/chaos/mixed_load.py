"""The soak's mixed load, shared by the soak and the overload tests: wrk with a Lua script
that sends mostly reads (an item by id, the first page of items, the roles) and some writes
(new items, description changes), closed loop or paced on a shared schedule, and counts
every status (and the 503s that are problem documents with Retry-After)."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

# The mix, in percent of requests: 80 % reads, 20 % writes. With SOAK_RPS set, requests are
# paced on one shared schedule of a request every 1000 / SOAK_RPS ms: each connection waits
# in delay() for the next free slot, so each of the CONNECTIONS connections sends on average
# one request every CONNECTIONS * 1000 / SOAK_RPS ms, its own answer's time included (a bare
# fixed delay would add every answer's latency and fall short of the rate). The schedule
# never catches up after a stall: a slow server shows as a lower achieved rate. With SOAK_PATH
# set, every request is a GET of that path instead of the mix.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
int clock_gettime(int clock_id, soak_timespec *tp);
]]
local timespec = ffi.new("soak_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, timespec)  -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1000000
end

math.randomseed(os.time())
local run = os.getenv("SOAK_RUN")
local ids = {}
for id in string.gmatch(os.getenv("SOAK_ITEM_IDS"), "%d+") do ids[#ids + 1] = id end
local json_headers = {
  ["Authorization"] = os.getenv("SOAK_AUTHORIZATION"),
  ["Content-Type"] = "application/json",
}
local counter = 0
statuses = {}

local rate = tonumber(os.getenv("SOAK_RPS") or "")
if rate then
  local interval = 1000 / rate
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval
    return math.floor(wait + 0.5)
  end
end

local function copy(headers)
  local result = {}
  for name, value in pairs(headers) do result[name] = value end
  return result
end

local only = os.getenv("SOAK_PATH")

function request()
  if only then return wrk.format("GET", only) end
  local pick = math.random(100)
  local headers = copy(json_headers)
  if pick <= 45 then
    return wrk.format("GET", "/items/" .. ids[math.random(#ids)], headers)
  elseif pick <= 65 then
    return wrk.format("GET", "/items?page=1&limit=20", headers)
  elseif pick <= 80 then
    headers["X-Version"] = "1.0"
    headers["Authorization"] = nil
    return wrk.format("GET", "/roles", headers)
  elseif pick <= 92 then
    counter = counter + 1
    local body = string.format('{"name": "soak %s %d", "description": "made by the soak"}', run, counter)
    return wrk.format("POST", "/items", headers, body)
  else
    counter = counter + 1
    local body = string.format('{"description": "patched %s %d"}', run, counter)
    return wrk.format("PATCH", "/items/" .. ids[math.random(#ids)], headers, body)
  end
end

shed = 0
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local kind = headers["Content-Type"] or ""
  if status == 503 and headers["Retry-After"] and string.find(kind, "application/problem+json", 1, true) then
    shed = shed + 1
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local counted = {}
  local shed_problems = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counted[tostring(status)] = (counted[tostring(status)] or 0) + count
    end
    shed_problems = shed_problems + thread:get("shed")
  end
  local parts = {}
  for status, count in pairs(counted) do parts[#parts + 1] = string.format('"%s": %d', status, count) end
  io.write(string.format(
    'SOAK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "shed_problems": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    shed_problems, table.concat(parts, ", ")))
end
"""


def call(method: str, url: str, body=None, headers=None) -> tuple[int, dict]:
    """One JSON request: its status and body (errors included, not raised)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def ok(method: str, url: str, body=None, headers=None, expect: int = 200) -> dict:
    status, answer = call(method, url, body, headers)
    assert status == expect, f"{method} {url}: {status} {answer}"
    return answer


def wrk(
    url: str, seconds: int, script: Path, env: dict[str, str], connections: int = 16, timeout: str = "10s"
) -> dict:
    """One wrk run: its figures from the script's done() (rate, p50/p99 in ms, non-2xx);
    SOAK_RPS in ``env`` paces it."""
    used_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", timeout, "-s", str(script), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    found = re.search(r"^SOAK_RESULT (.*)$", output, re.MULTILINE)
    assert found, f"unexpected wrk output:\n{output}"
    result = json.loads(found.group(1))
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The load generator's own CPU, in cores: taken from the same machine as the server's.
    cpu_seconds = (used.ru_utime - used_before.ru_utime) + (used.ru_stime - used_before.ru_stime)
    result["generator_cores"] = cpu_seconds / (result["duration_us"] / 1e6)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p50_ms"], result["p99_ms"] = result["p50_us"] / 1000, result["p99_us"] / 1000
    result["max_ms"] = result["max_us"] / 1000
    result["ok"] = sum(n for status, n in result["statuses"].items() if 200 <= int(status) < 300)
    result["goodput"] = result["ok"] / (result["duration_us"] / 1e6)
    result["non_2xx"] = sum(n for status, n in result["statuses"].items() if not 200 <= int(status) < 300)
    result["socket_errors"] = sum(result[kind] for kind in ("connect", "read", "write", "timeout"))
    return result
