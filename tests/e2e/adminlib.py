"""Shared pieces for tests that drive the admin API: the token, the `admin:` section,
API calls, and a wrk run that counts statuses."""
import json
import re
import subprocess

import requests

TOKEN = "ops-token-0123456789abcdef"


def admin_yaml(admin_port, token_file="admin-token"):
    return f"""admin:
  listen: "127.0.0.1:{admin_port}"
  tokens: [{{name: ops, file: {token_file}}}]
"""


def write_token(tmp_path, name="admin-token", token=TOKEN):
    (tmp_path / name).write_text(token + "\n")


def api(admin_url, method, path, body=None, token=TOKEN, timeout=10):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    return requests.request(method, admin_url + path, headers=headers, data=data, timeout=timeout)


WRK_STATUS_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do io.write(string.format("status %d %d\\n", s, n)) end
  end
end
"""


def start_wrk(tmp_path, url, seconds=6, connections=32):
    """wrk in the background, counting statuses; finish with wrk_result()."""
    script = tmp_path / "statuses.lua"
    script.write_text(WRK_STATUS_SCRIPT)
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                            stdout=subprocess.PIPE, text=True)


def wrk_result(proc, timeout=90):
    """(wrk's output, {status: count})."""
    out, _ = proc.communicate(timeout=timeout)
    return out, {int(s): int(n) for s, n in re.findall(r"status (\d+) (\d+)", out)}
