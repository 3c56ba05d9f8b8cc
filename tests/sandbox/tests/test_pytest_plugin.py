# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sandbox's pytest plugin (tests/sandbox/pytest_plugin.py), run in a pytest of its own."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import latitude_sandbox

SANDBOX_DIR = os.path.dirname(os.path.abspath(latitude_sandbox.__file__))

INNER_TESTS = textwrap.dedent("""
    import json
    import os

    RECORD = os.environ["PLUGIN_TEST_RECORD"]


    def record(**values):
        data = {}
        if os.path.exists(RECORD):
            with open(RECORD) as handle:
                data = json.load(handle)
        data.update(values)
        with open(RECORD, "w") as handle:
            json.dump(data, handle)


    def test_sandbox_process(sandbox_process, tmp_path):
        teams = sorted(team["name"] for team in sandbox_process.control.state()["teams"])
        assert teams == ["data", "platform"]
        assert sandbox_process.url.startswith("http://127.0.0.1:")
        assert (tmp_path / "sandbox.out").read_text().startswith("latitude-sandbox listening on ")
        record(per_test=sandbox_process.proc.pid)


    def test_per_test_sandbox_is_stopped_after_its_test():
        with open(RECORD) as handle:
            pid = json.load(handle)["per_test"]
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        raise AssertionError("the sandbox of the previous test still runs")


    def test_start_sandbox_with_options(start_sandbox, tmp_path):
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"teams": [{"name": "solo", "keys": []}]}))
        child = start_sandbox(["--seed", str(seed)], work_dir=str(tmp_path))
        assert [team["name"] for team in child.control.state()["teams"]] == ["solo"]
        record(left_running=child.proc.pid)
""")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_plugin_fixtures_start_and_stop_sandboxes(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    record = tmp_path / "record.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SANDBOX_DIR] + [p for p in sys.path if p]),
               PLUGIN_TEST_RECORD=str(record))
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pytest_plugin", "-p", "no:cacheprovider", "-q", "test_inner.py"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        timeout=120, check=False,
    )
    pids = json.loads(record.read_text()) if record.exists() else {}
    leftovers = [pid for pid in pids.values() if alive(pid)]
    for pid in leftovers:
        os.kill(pid, signal.SIGTERM)
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout
    assert sorted(pids) == ["left_running", "per_test"]
    # The sandbox that a test left running stopped with the session.
    assert leftovers == []
