"""kill -9 in the middle of a toggle storm: after a restart the state is the last one the
API acknowledged (or the one whose answer was cut off by the kill, never an older one), and
the audit log still holds every acknowledged change."""
import json
import signal
import threading

import requests

from adminlib import TOKEN, admin_yaml, api, write_token
from conftest import free_port, server_yaml, wait_until, write_tree


def test_kill_9_during_a_toggle_storm_keeps_the_last_acknowledged_state(tmp_path, backend_factory,
                                                                       gateway_factory):
    write_token(tmp_path)
    write_tree(tmp_path / "pages", {"maintenance.html": "<p>soon</p>\n"})
    app = backend_factory("app")
    port, admin_port = free_port(), free_port()
    gw = gateway_factory(server_yaml(port) + admin_yaml(admin_port) + f"""
target_groups:
  app:
    targets: ["{app.address}"]
sites:
  - name: www
    default: true
    pages: {{root: pages}}
    default_action: {{forward: app}}
""", port)
    admin = f"http://127.0.0.1:{admin_port}"
    acked = []      # reasons whose PUT was answered 200
    sent = []       # every reason sent, in order
    stop = threading.Event()

    def storm():
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {TOKEN}"
            i = 0
            while not stop.is_set():
                reason = f"toggle-{i}"
                sent.append(reason)
                try:
                    r = s.put(admin + "/v1/sites/www/maintenance",
                              data=json.dumps({"on": i % 2 == 0, "reason": reason}), timeout=5)
                except requests.RequestException:
                    return  # the gateway died under us
                if r.status_code == 200:
                    acked.append(reason)
                i += 1

    t = threading.Thread(target=storm)
    t.start()
    assert wait_until(lambda: len(acked) >= 40, timeout=20)
    gw.stop(signal.SIGKILL)
    stop.set()
    t.join()
    last_acked = acked[-1]
    # The one request whose answer the kill may have cut off can be durable too.
    allowed = {last_acked}
    after = sent.index(last_acked) + 1
    if after < len(sent):
        allowed.add(sent[after])

    gw.start()
    state = api(admin, "GET", "/v1/sites/www/maintenance").json()
    assert state["runtime"]["reason"] in allowed, (state["runtime"], last_acked)
    i = int(state["runtime"]["reason"].split("-")[1])
    assert state["on"] is (i % 2 == 0)
    expected_status = 503 if i % 2 == 0 else 200
    assert requests.get(gw.url + "/", timeout=5).status_code == expected_status

    # Every acknowledged change is in the audit log, newest first, across the restart.
    entries = api(admin, "GET", "/v1/audit?limit=1000").json()["entries"]
    logged = [e["reason"] for e in entries if e["action"].startswith("maintenance.")]
    assert set(acked) <= set(logged), set(acked) - set(logged)
    assert logged[0] in allowed
