# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures and reporting of the reliability and secret-safety suite (see docs/reliability.md).

* ``artifacts``: the session's artifact tree (every run's playbook, output, results and files).
  ``FUNCTIONAL_ARTIFACTS=DIR`` puts it in DIR instead of pytest's temporary directory.
* ``sandbox``: a sandbox subprocess shared by a test module, reset before each test. Every
  sandbox starts through the ``start_sandbox`` fixture of tests/sandbox/pytest_plugin.py.
* ``control``, ``admin_token(team)``: its control API and the teams' admin tokens.
* ``run_play(tasks_or_yaml, extra_env=None, check=False, diff=False, verbosity=0)``: runs a
  playbook against ``sandbox`` with the platform admin token in ``LATITUDESH_AUTH_TOKEN``.
"""

import os

import pytest

import harness
import pytest_plugin  # tests/sandbox, put on sys.path by harness

CATEGORIES = (
    ("fault", "fault cases", "API failures, ambiguous writes and transport errors, through ansible-playbook"),
    ("badinput", "bad-input cases", "invalid module and role input rejected before any API request"),
    ("leak", "leak checks", "no token in any output or file outside the sanctioned places"),
    ("ratelimit", "rate-limit cases", "429 handling and the sandbox's rate limit"),
)
_OUTCOMES = {}
_STATE = {}


def pytest_configure(config):
    pytest_plugin.register(config)
    for marker, _label, text in CATEGORIES:
        config.addinivalue_line("markers", "%s: %s" % (marker, text))


def pytest_collection_modifyitems(session, config, items):
    """The scan of the whole session's artifacts runs after every other test."""
    last = [item for item in items if item.name == "test_every_run_of_the_session_is_leak_free"]
    items[:] = [item for item in items if item not in last] + last


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    markers = [marker for marker, _label, _text in CATEGORIES if item.get_closest_marker(marker)]
    if not markers:
        return
    # A test counts once: failed if its setup, call or teardown failed, passed if its call passed.
    if report.failed:
        _OUTCOMES[item.nodeid] = (markers, "failed")
    elif report.when == "call" and report.passed and _OUTCOMES.get(item.nodeid, (None, None))[1] != "failed":
        _OUTCOMES[item.nodeid] = (markers, "passed")
    elif report.skipped and item.nodeid not in _OUTCOMES:
        _OUTCOMES[item.nodeid] = (markers, "skipped")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _OUTCOMES and "artifacts" not in _STATE:
        return
    counts = dict((marker, 0) for marker, _label, _text in CATEGORIES)
    passed = failed = 0
    for markers, result in _OUTCOMES.values():
        for marker in markers:
            counts[marker] += 1
        passed += result == "passed"
        failed += result == "failed"
    parts = ["%d %s" % (counts[marker], label) for marker, label, _text in CATEGORIES]
    terminalreporter.write_line("reliability: %s (%d passed/%d failed)" % (", ".join(parts), passed, failed))
    if "artifacts" in _STATE:
        terminalreporter.write_line("reliability: artifacts of every run in %s" % _STATE["artifacts"].base)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, start_sandbox):
    base = os.environ.get("FUNCTIONAL_ARTIFACTS")
    if base:
        base = os.path.abspath(base)
        os.makedirs(base, exist_ok=True)
    else:
        base = str(tmp_path_factory.mktemp("functional"))
    _STATE["artifacts"] = harness.Artifacts(base, start_sandbox)
    return _STATE["artifacts"]


@pytest.fixture(scope="session")
def runner(artifacts):
    return harness.Runner(artifacts)


@pytest.fixture(scope="module")
def _shared_sandbox(artifacts, request):
    sandbox = harness.SandboxProcess(artifacts, request.module.__name__)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(_shared_sandbox):
    """The module's sandbox, back at its seed: no faults, no rate limit, no latency, an empty log."""
    _shared_sandbox.control.reset()
    return _shared_sandbox


@pytest.fixture
def control(sandbox):
    return sandbox.control


@pytest.fixture
def admin_token(sandbox):
    return sandbox.admin_token


@pytest.fixture
def run_play(runner, sandbox, request):
    """Run tasks (a list, wrapped in a play aimed at ``sandbox``) or a whole playbook (YAML text)."""

    def run(tasks_or_play_yaml, extra_env=None, check=False, diff=False, verbosity=0, name=None,
            api_retries=2, api_timeout=5, auth="platform"):
        playbook = tasks_or_play_yaml
        if not isinstance(playbook, str):
            playbook = harness.build_play(playbook, api_url=sandbox.url, api_retries=api_retries,
                                          api_timeout=api_timeout)
        env = {"LATITUDESH_API_URL": sandbox.url}
        if auth:
            env["LATITUDESH_AUTH_TOKEN"] = sandbox.admin_token(auth)
        env.update(extra_env or {})
        return runner.run(playbook, name or request.node.name, extra_env=env, check=check, diff=diff,
                          verbosity=verbosity)

    return run
