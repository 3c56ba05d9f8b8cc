# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/ci/summary.py, the last line of make test: what it counts, and that nothing is skipped silently."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = {"pass": "<system-out>ok</system-out>", "fail": "<failure message='boom'/>",
         "skip": "<skipped message='openssl missing'/><system-out>-</system-out>"}


@pytest.fixture
def project(tmp_path):
    """A tree with the real summary.py; ``run(sessions, junit, allow)`` -> (rc, lines).

    ``sessions``: (name, result, reason[, python]) as in nox's report, whose signatures name the Python."""
    os.makedirs(str(tmp_path / "tests" / "ci"))
    shutil.copy(os.path.join(ROOT, "tests", "ci", "summary.py"), str(tmp_path / "tests" / "ci"))

    def run(sessions, junit=None, allow=""):
        for name, outcomes in (junit or {}).items():
            os.makedirs(str(tmp_path / "tests" / "output" / "junit" / name), exist_ok=True)
            cases = "".join("<testcase name='t%d'>%s</testcase>" % (index, CASES[outcome])
                            for index, outcome in enumerate(outcomes))
            (tmp_path / "tests" / "output" / "junit" / name / "result.xml").write_text(
                "<testsuites><testsuite>%s</testsuite></testsuites>" % cases)
        report = tmp_path / "report.json"
        report.write_text(json.dumps({"result": 1, "sessions": [
            {"name": session[0], "result": session[1], "reason": session[2], "duration": 1.0,
             "signatures": [session[0]] + ["%s-%s" % (session[0], python) for python in session[3:]]}
            for session in sessions]}))
        env = dict(os.environ, ALLOW_MISSING=allow)
        done = subprocess.run([sys.executable, str(tmp_path / "tests" / "ci" / "summary.py"), str(report)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        return done.returncode, done.stdout.splitlines()
    return run


def test_counts_test_cases_and_one_per_session_without_results(project):
    rc, lines = project([("units-2.19", "success", None), ("changelog", "success", None)],
                        junit={"units-2.19": ["pass", "pass", "skip"]})
    assert rc == 0, lines
    assert lines[-1] == "3 passed, 0 failed, 1 skipped"


def test_a_failed_test_case_fails_the_run_once(project):
    rc, lines = project([("functional-2.21", "failed", "Command failed")], junit={"functional-2.21": ["pass", "fail"]})
    assert rc == 1
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"


def test_a_failed_session_without_results_counts_as_one_failure(project):
    rc, lines = project([("sanity-2.20", "failed", "Command failed")])
    assert (rc, lines[-1]) == (1, "0 passed, 1 failed, 0 skipped")


def test_a_missing_interpreter_fails_unless_allowed_by_name(project):
    # 3.99: a Python that no machine has.
    sessions = [("sanity-2.21", "skipped", "Python interpreter 3.99 not found.", "3.99"), ("changelog", "success", None)]
    rc, lines = project(sessions)
    assert (rc, lines[-1]) == (1, "1 passed, 1 failed, 0 skipped")
    rc, lines = project(sessions, allow="python3.12")  # another Python does not excuse it
    assert (rc, lines[-1]) == (1, "1 passed, 1 failed, 0 skipped")
    rc, lines = project(sessions, allow="openssl,python3.99")
    assert (rc, lines[-1]) == (0, "1 passed, 0 failed, 1 skipped")
    assert lines[-2] == "did not run (1, counted as skipped): sanity-2.21: Python interpreter 3.99 not found."


def test_allow_missing_does_not_excuse_a_skip_when_the_python_is_there(project, tmp_path, monkeypatch):
    # A session skipped for another reason is not excused by naming its Python, which runs here.
    here = "%d.%d" % sys.version_info[:2]
    os.makedirs(str(tmp_path / "bin"))
    os.symlink(sys.executable, str(tmp_path / "bin" / ("python" + here)))
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    rc, lines = project([("units-2.21", "skipped", "skipped for another reason", here)], allow="python" + here)
    assert (rc, lines[-1]) == (1, "0 passed, 1 failed, 0 skipped")


def test_skipped_test_cases_are_listed_and_counted(project):
    rc, lines = project([("functional-2.19", "success", None)], junit={"functional-2.19": ["pass", "skip"]})
    assert rc == 0
    assert lines[-2:] == ["did not run (1, counted as skipped): functional-2.19: t1", "1 passed, 0 failed, 1 skipped"]


def test_a_session_that_recorded_why_it_skipped_is_not_a_failure(project):
    # controller() in noxfile.py: a tests folder named in ALLOW_MISSING is recorded as a skipped case.
    rc, lines = project([("units-2.20", "skipped", "tests/unit is missing (ALLOW_MISSING)")],
                        junit={"units-2.20": ["skip"]})
    assert (rc, lines[-1]) == (0, "0 passed, 0 failed, 1 skipped")


def test_the_python_of_a_skipped_session_comes_from_its_signature(project):
    sessions = [("packaging", "skipped", "Python interpreter 3.98 not found.", "3.98")]
    assert project(sessions, allow="python3.99")[0] == 1
    rc, lines = project(sessions, allow="python3.98")
    assert (rc, lines[-1]) == (0, "0 passed, 0 failed, 1 skipped")


def test_a_skipped_session_without_a_python_is_a_failure_whatever_is_allowed(project):
    # antsibull-nox's sessions (docs-check, ...) have no Python in their signatures: nothing excuses their skip.
    rc, lines = project([("docs-check", "skipped", "no reason")], allow="python3.11,python3.12,python3.13")
    assert (rc, lines[-1]) == (1, "0 passed, 1 failed, 0 skipped")
