# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rate limits: a 429 is waited out for exactly as long as the API advises, then sent again.

The waits are measured on the sandbox's side: the time between the 429 and the request that
follows it in the request log (``ts`` is when the sandbox started handling a request). These
tests run one at a time, never next to other playbook runs, so that the timing holds.
"""

import os
import re
import stat
import threading
import time

import pytest

from harness import API, assert_no_traceback, assert_one_paragraph, api_request

pytestmark = pytest.mark.ratelimit

INFO = {"name": "case", "latitudesh.cloud.api_key_info": {}, "ignore_errors": True}
TOLERANCE = 0.10  # a wait may exceed the advised time by at most 10 %


def gaps_after_429(log):
    """``(seconds until the next request, entry)`` for every 429 in the log."""
    return [(later["ts"] - entry["ts"], entry) for entry, later in zip(log, log[1:]) if entry["status"] == 429]


def assert_waited(gap, advised):
    assert gap >= advised, "sent again after %.3f s, before the advised %.3f s" % (gap, advised)
    assert gap <= advised * (1 + TOLERANCE), "waited %.3f s for an advised %.3f s (more than +10%%)" % (gap, advised)


def test_429_with_meta_retry_after_is_waited_out(run_play, control):
    control.fault(method="GET", path=API, kind="status", status=429, retry_after=1.5)
    run = run_play([INFO])
    assert_no_traceback(run)
    assert run.task("case")["status"] == "ok", run.describe()
    log = control.log()
    assert [(entry["method"], entry["status"]) for entry in log] == [("GET", 429), ("GET", 200)]
    (gap, _entry), = gaps_after_429(log)
    assert_waited(gap, 1.5)


def test_429_with_retry_after_header_on_create_sends_one_key(run_play, control, sandbox):
    # No meta.retry_after: only the header says how long to wait.
    control.fault(method="POST", path=API, kind="status", status=429, retry_after_header=2)
    run = run_play([{"name": "case", "latitudesh.cloud.api_key": {"name": "rl-header"}, "ignore_errors": True}])
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "changed", run.describe()
    log = control.log()
    assert [(entry["method"], entry["status"]) for entry in log] == [("GET", 200), ("POST", 429), ("POST", 201)]
    (gap, _entry), = gaps_after_429(log)
    assert_waited(gap, 2.0)
    key = sandbox.key("rl-header")
    assert result["result"]["token"] == key["token"]


def test_429_on_rotate_is_sent_again_and_rotates_once(run_play, control, sandbox):
    before = sandbox.key("ci-deployer")
    control.fault(method="PUT", path=API + "/*", kind="status", status=429, retry_after=1)
    run = run_play([{"name": "case", "latitudesh.cloud.api_key": {"name": "ci-deployer", "state": "regenerated"},
                     "ignore_errors": True}])
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "changed", run.describe()
    puts = [entry["status"] for entry in control.log() if entry["method"] == "PUT"]
    assert puts == [429, 200]
    after = sandbox.key("ci-deployer")
    assert after["token"] != before["token"] and result["result"]["token"] == after["token"]


def test_429_without_advice_backs_off(run_play, control):
    control.fault(method="GET", path=API, kind="status", status=429)
    run = run_play([INFO])
    assert run.task("case")["status"] == "ok", run.describe()
    (gap, _entry), = gaps_after_429(control.log())
    # The first backoff is between half and all of 1 s.
    assert 0.5 <= gap <= 1.0 * (1 + TOLERANCE), gap


def test_persistent_429_exhausts_api_retries_with_a_clear_message(run_play, control):
    control.fault(method="GET", path=API, kind="status", status=429, retry_after=0.3, times=10)
    run = run_play([INFO], api_retries=2)
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    assert_one_paragraph(result, run)
    msg = result["result"]["msg"]
    assert re.search(r"rate-limited \(HTTP 429\) 3 time\(s\) over \d+(\.\d+)? s", msg), msg
    assert "kept rate-limiting" in msg and "api_retries=2" in msg, msg
    assert [entry["status"] for entry in control.log()] == [429, 429, 429]


def test_advised_wait_beyond_the_cap_fails_at_once(run_play, control):
    control.fault(method="GET", path=API, kind="status", status=429, retry_after=600)
    run = run_play([INFO])
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    assert_one_paragraph(result, run)
    assert re.search(r"asked to wait 600 s", result["result"]["msg"]), result["result"]["msg"]
    assert len(control.log()) == 1


def forced_waits(log, window):
    """Replay the sandbox's fixed windows over the log: the time each 429 had left in its window.

    A key's window opens with the first counted request (any answer but 429) at or after the end of
    the previous one; a 429 is advised the rest of the current window.
    """
    start, forced = None, []
    for entry in log:
        if entry["status"] == 429:
            forced.append(start + window - entry["ts"])
        elif start is None or entry["ts"] >= start + window:
            start = entry["ts"]
    return forced


def test_role_provisions_many_keys_under_the_rate_limit(sandbox, control, run_play, artifacts, tmp_path):
    """The role creates 12 keys while another client has used up the window's 20 writes: it waits, never fails.

    The window is 9.5 s (under 10 s the sandbox advises milliseconds, not whole seconds). The 20
    writes that exhaust it are sent as soon as the role has read the team (its first GET), so the
    role's first creates meet the limit however long the role took to start (on a busy machine a
    few of them may take the window's last slots before the helper's writes do); every later write
    fits in the next window, because Ansible runs about one task a second. The role's wait after
    each 429 must cover what the window had left, and exceed it by at most 10 %.
    """
    window = 9.5
    names = ["svc-%02d" % number for number in range(12)]
    token_dir = str(tmp_path / "credentials")
    artifacts.add_token_dir(token_dir)
    playbook = """
- name: provision under the rate limit
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/latitudesh.cloud.latitudesh:
      api_url: "{{ lookup('env', 'LATITUDESH_API_URL') }}"
      api_retries: 3
      api_timeout: 10
  roles:
    - role: latitudesh.cloud.team_api_keys
      vars:
        team_api_keys_token_dir: %s
        team_api_keys_teams:
          - name: platform
            auth_token: "{{ lookup('env', 'LATITUDESH_AUTH_TOKEN') }}"
            api_keys: %s
""" % (token_dir, [{"name": name} for name in names])
    control.rate_limit(True, window=window)
    token = sandbox.admin_token()
    monitoring = sandbox.key("monitoring")["id"]
    body = {"data": {"type": "api_keys", "id": monitoring, "attributes": {"read_only": True}}}
    statuses = []

    def use_up_the_window():
        # Once the role has read the team (its first GET), its first create is seconds away: the
        # 20 writes sent now fill the window that create falls into, however slow the start was.
        deadline = time.monotonic() + 120
        while not any(entry["method"] == "GET" for entry in control.log()) and time.monotonic() < deadline:
            time.sleep(0.02)
        for dummy in range(20):
            statuses.append(api_request(sandbox, "PATCH", API + "/" + monitoring, token, body)[0])

    helper = threading.Thread(target=use_up_the_window)
    helper.start()
    run = run_play(playbook)
    helper.join(130)
    control.rate_limit(False)
    # The 20 writes fill the window; on a busy machine the role's first creates can land among them and take
    # its last slots, and then the helper's last writes are the ones refused. Either way the window is full.
    assert len(statuses) == 20 and set(statuses) <= {200, 429} and statuses[0] == 200, statuses
    assert statuses == sorted(statuses), "a write was accepted after a 429 in the same window: %s" % statuses
    assert_no_traceback(run)
    assert run.rc == 0, run.describe()
    assert [entry for entry in run.results if entry["status"] == "failed"] == []
    for name in names:
        key = sandbox.key(name)  # exactly one key of each name
        path = os.path.join(token_dir, "platform", name + ".token")
        with open(path, encoding="utf-8") as handle:
            assert handle.read() == key["token"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    log = control.log()
    assert sum(1 for entry in log if entry["method"] == "POST" and entry["status"] == 201) == len(names)
    # Every 429 in the log with what its window had left; the helper's PATCHes count towards the window,
    # but only the role's own requests (GET and POST) show how long the role waited after its 429s.
    forced = dict(zip([index for index, entry in enumerate(log) if entry["status"] == 429], forced_waits(log, window)))
    role = [(index, entry) for index, entry in enumerate(log) if entry["method"] != "PATCH"]
    assert all(entry["method"] in ("GET", "POST") for _index, entry in role), role
    waits = [(later["ts"] - entry["ts"], entry, forced[index])
             for (index, entry), (_later_index, later) in zip(role, role[1:]) if entry["status"] == 429]
    assert waits, "the rate limit never bound: the test proves nothing (the role started too late?)"
    for gap, _entry, wait in waits:
        # The sandbox rounds its advice to milliseconds; the replay of its windows is as exact.
        assert gap >= wait - 0.005, "sent again %.3f s after a 429, %.3f s before the window ended" % (gap, wait - gap)
        assert gap <= wait * (1 + TOLERANCE), "waited %.3f s where the limit forced %.3f s" % (gap, wait)
    total_gap, total_forced = sum(gap for gap, _entry, _wait in waits), sum(wait for _gap, _entry, wait in waits)
    assert total_gap <= total_forced * (1 + TOLERANCE), (total_gap, total_forced)
