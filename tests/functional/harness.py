# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Machinery of the functional tests: sandbox processes, playbook runs, artifacts, scenarios.

Every playbook run gets its own directory under the session's artifact directory, holding the
playbook, its stdout and stderr, the per-task results recorded by
``callback_plugins/functional_recorder.py`` and every file the run wrote (token files, Ansible's
temporary files). The leak checks scan that whole tree against the sandboxes' token journals.
Secrets never appear in a playbook: tokens reach Ansible through environment variables.
"""

import concurrent.futures
import itertools
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SANDBOX_DIR = os.path.join(ROOT, "tests", "sandbox")
CALLBACK_DIR = os.path.join(HERE, "callback_plugins")
API = "/auth/api_keys"
ITEM = "/auth/api_keys/*"
GROUP = "group/latitudesh.cloud.latitudesh"

# The sandbox's pytest plugin (and latitude_sandbox, which it imports) for conftest.py.
if SANDBOX_DIR not in sys.path:
    sys.path.insert(0, SANDBOX_DIR)

# Variables of the caller's environment that must not reach a test run.
_SCRUBBED_PREFIXES = ("LATITUDESH_", "ANSIBLE_", "FUNCTIONAL_")
_KEPT = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS")


def slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "run"


def collections_path():
    """Where Ansible finds latitudesh.cloud: the caller's setting, else the tree this file is in."""
    for name in _KEPT:
        if os.environ.get(name):
            return os.environ[name]
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == "ansible_collections":
        return os.sep.join(parts[:-3])
    raise RuntimeError(
        "set ANSIBLE_COLLECTIONS_PATH to a directory holding ansible_collections/latitudesh/cloud"
    )


def ansible_playbook():
    path = shutil.which("ansible-playbook")
    if not path:
        raise RuntimeError("ansible-playbook is not on PATH")
    return path


def closed_port():
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_request(sandbox, method, path, token, body=None):
    """One request to the sandbox's API (not the control API): ``(status, decoded body or None)``."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(sandbox.url + path, data=data, method=method, headers={
        "Authorization": token, "Content-Type": "application/json", "Accept": "application/vnd.api+json"})
    handlers = [urllib.request.ProxyHandler({})]
    if sandbox.tls:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=sandbox.tls[0])))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=10) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return status, (json.loads(text) if text.strip() else None)


# --------------------------------------------------------------------------
# Artifacts
# --------------------------------------------------------------------------

class Artifacts(object):
    """The session's artifact tree: runs/, journals/, sandboxes/ and Ansible's own settings."""

    def __init__(self, base, start_sandbox):
        self.base = base
        self.start_sandbox = start_sandbox  # the sandbox plugin's fixture (tests/sandbox/pytest_plugin.py)
        self.runs = os.path.join(base, "runs")
        self.journals = os.path.join(base, "journals")
        self.sandboxes = os.path.join(base, "sandboxes")
        self.token_dirs = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        for directory in (self.runs, self.journals, self.sandboxes):
            os.makedirs(directory, exist_ok=True)
        self.inventory = os.path.join(base, "inventory.ini")
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n')
        self.config = os.path.join(base, "ansible.cfg")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write("[defaults]\nretry_files_enabled = False\n")
        self.extra_journal = os.path.join(self.journals, "invented.journal")
        open(self.extra_journal, "a").close()

    def new_dir(self, kind, name):
        with self._lock:
            number = next(self._counter)
        path = os.path.join(self.base, kind, "%03d-%s" % (number, slug(name)))
        os.makedirs(path)
        return path

    def add_secret(self, value):
        """Register a secret that no sandbox issued (a bogus token a test sends)."""
        with self._lock:
            with open(self.extra_journal, "a", encoding="utf-8") as handle:
                handle.write(value + "\n")

    def add_token_dir(self, path):
        with self._lock:
            self.token_dirs.append(path)

    def journal_files(self):
        return sorted(
            os.path.join(self.journals, name) for name in os.listdir(self.journals) if name.endswith(".journal")
        )


# --------------------------------------------------------------------------
# Sandbox processes
# --------------------------------------------------------------------------

class SandboxProcess(object):
    """A sandbox started by the ``start_sandbox`` fixture, with its request log, output and token
    journal among the artifacts."""

    def __init__(self, artifacts, name, extra_args=(), tls=None):
        self.dir = artifacts.new_dir("sandboxes", name)
        self.journal = os.path.join(artifacts.journals, "%s.journal" % os.path.basename(self.dir))
        self.log_file = os.path.join(self.dir, "requests.jsonl")
        self.tls = tls
        self._process = artifacts.start_sandbox(
            ["--log", self.log_file, "--token-journal", self.journal] + list(extra_args),
            work_dir=self.dir, output=os.path.join(self.dir, "sandbox.out"), tls=tls,
        )
        self.proc = self._process.proc
        self.url = self._process.url
        self.control = self._process.control

    def admin_token(self, team="platform"):
        return self.control.admin_token(team)

    def team(self, name="platform"):
        return next(team for team in self.control.state()["teams"] if team["name"] == name)

    def keys_named(self, name, team="platform"):
        return [key for key in self.team(team)["keys"] if key["name"] == name]

    def key(self, name, team="platform"):
        keys = self.keys_named(name, team)
        assert len(keys) == 1, "expected one key named %r, found %d" % (name, len(keys))
        return keys[0]

    def stop(self):
        self._process.stop()


# --------------------------------------------------------------------------
# Playbook runs
# --------------------------------------------------------------------------

class PlayResult(object):
    """One ansible-playbook run: rc, stdout, stderr and the recorded per-task results."""

    def __init__(self, rc, stdout, stderr, results, run_dir, duration):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.results = results
        self.run_dir = run_dir
        self.duration = duration

    @property
    def text(self):
        return self.stdout + "\n" + self.stderr

    def task(self, name):
        """The recorded result of the one task called ``name`` (a role's tasks with or without ``role : ``)."""
        found = [entry for entry in self.results if task_name(entry) == name]
        assert len(found) == 1, "task %r ran %d times in %s\n%s" % (name, len(found), self.run_dir, self.text)
        return found[0]

    def describe(self):
        return "run %s (rc=%s)\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.run_dir, self.rc, self.stdout[-6000:], self.stderr[-3000:])


def task_name(entry):
    """A recorded task's name without the ``<role> : `` prefix that some ansible-core versions record."""
    return re.sub(r"^[\w.]+ : ", "", entry["task"])


def build_play(tasks, api_url=None, api_retries=2, api_timeout=5, defaults=None, play_vars=None):
    """A one-play playbook on localhost whose latitudesh.cloud modules talk to ``api_url``."""
    module_defaults = {}
    if api_url is not None:
        module_defaults = {"api_url": api_url, "api_retries": api_retries, "api_timeout": api_timeout}
    module_defaults.update(defaults or {})
    play = {"name": "functional", "hosts": "localhost", "gather_facts": False}
    if module_defaults:
        play["module_defaults"] = {GROUP: module_defaults}
    if play_vars:
        play["vars"] = play_vars
    play["tasks"] = tasks
    return [play]


class Runner(object):
    """Runs playbooks with ansible-playbook from PATH, recording everything under the artifacts."""

    def __init__(self, artifacts):
        self.artifacts = artifacts

    def env(self, run_dir, extra_env=None):
        env = dict(
            (key, value) for key, value in os.environ.items()
            if key in _KEPT or not key.startswith(_SCRUBBED_PREFIXES)
        )
        env.update(
            ANSIBLE_COLLECTIONS_PATH=collections_path(),
            ANSIBLE_CONFIG=self.artifacts.config,
            ANSIBLE_STDOUT_CALLBACK="minimal",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
            ANSIBLE_CALLBACKS_ENABLED="functional_recorder",
            ANSIBLE_LOCAL_TEMP=os.path.join(run_dir, "ansible-local-tmp"),
            ANSIBLE_REMOTE_TMP=os.path.join(run_dir, "ansible-remote-tmp"),
            ANSIBLE_HOME=os.path.join(run_dir, "ansible-home"),
            FUNCTIONAL_RECORD=os.path.join(run_dir, "results.jsonl"),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(self, playbook, name="play", extra_env=None, check=False, diff=False, verbosity=0, extra_args=()):
        """Write ``playbook`` (YAML text or a list of plays) into a new run directory and run it.

        ``extra_env`` is added to the environment; a value of None removes that variable.
        """
        run_dir = self.artifacts.new_dir("runs", name)
        path = os.path.join(run_dir, "playbook.yml")
        with open(path, "w", encoding="utf-8") as handle:
            if isinstance(playbook, str):
                handle.write(playbook)
            else:
                yaml.safe_dump(playbook, handle, sort_keys=False, default_flow_style=False, width=1000)
        argv = [ansible_playbook(), "-i", self.artifacts.inventory, path]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        argv += list(extra_args)
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=run_dir, env=self.env(run_dir, extra_env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600, check=False)
        duration = time.monotonic() - started
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        with open(os.path.join(run_dir, "stdout.txt"), "w", encoding="utf-8") as handle:
            handle.write(stdout)
        with open(os.path.join(run_dir, "stderr.txt"), "w", encoding="utf-8") as handle:
            handle.write(stderr)
        results = []
        record = os.path.join(run_dir, "results.jsonl")
        if os.path.exists(record):
            with open(record, encoding="utf-8") as handle:
                results = [json.loads(line) for line in handle if line.strip()]
        return PlayResult(proc.returncode, stdout, stderr, results, run_dir, duration)


# --------------------------------------------------------------------------
# Scenarios: one fresh sandbox, some fault rules, one or more playbook runs
# --------------------------------------------------------------------------

class Scenario(object):
    """A case run against its own sandbox: ``faults`` are installed, then each step's tasks run.

    The task under test is named ``case``; ``steps`` are later playbook runs (for example the
    re-run that the failure message advises). ``expect`` is ``ok``, ``changed`` or ``failed``;
    ``msg`` are regular expressions the message must match, ``msg_not`` ones it must not;
    ``changed`` (when not None) is the ``changed`` the result must report, failed or not;
    ``requests`` maps a method to the number of API requests of that method the first run
    makes; ``check`` is a callable ``check(outcome)`` for anything else. ``setup(sandbox)`` runs
    before the faults are installed and returns ``outcome.context``; ``task`` and each step may be
    callables of that context. ``settle`` waits that many seconds after the first run before the
    request log and state are read (for faults that finish after the client gave up).
    """

    def __init__(self, id, task, faults=(), expect="failed", msg=(), msg_not=(), requests=None, check=None,
                 steps=(), api_retries=2, api_timeout=5, auth="platform", api_url=None, settle=None,
                 setup=None, changed=None):
        self.id = id
        self.changed = changed
        self.task = task
        self.faults = list(faults)
        self.expect = expect
        self.msg = list(msg)
        self.msg_not = list(msg_not)
        self.requests = requests
        self.check = check
        self.steps = list(steps)
        self.api_retries = api_retries
        self.api_timeout = api_timeout
        self.auth = auth
        self.api_url = api_url
        self.settle = settle
        self.setup = setup

    def __repr__(self):
        return "Scenario(%s)" % self.id


class Outcome(object):
    """What a scenario left: the runs, the request log of each run, the sandbox state before and after."""

    def __init__(self, scenario, sandbox):
        self.scenario = scenario
        self.sandbox = sandbox
        self.runs = []
        self.logs = []
        self.states = []
        self.context = None
        self.before = None
        self.after = None
        self.error = None

    @property
    def run(self):
        return self.runs[0]

    @property
    def log(self):
        return self.logs[0]

    @property
    def result(self):
        return self.run.task("case")

    @property
    def msg(self):
        return self.result["result"].get("msg", "")

    def count(self, method, log=None):
        return sum(1 for entry in (self.log if log is None else log) if entry["method"] == method)

    def keys_named(self, name, team="platform", state=None):
        state = state or self.after
        team_state = next(entry for entry in state["teams"] if entry["name"] == team)
        return [key for key in team_state["keys"] if key["name"] == name]

    def describe(self):
        parts = ["scenario %s" % self.scenario.id]
        for number, run in enumerate(self.runs):
            parts.append(run.describe())
            parts.append("requests: %s" % json.dumps(
                [(e["method"], e["path"], e["status"], e["fault"]) for e in self.logs[number]]))
        return "\n".join(parts)


def scenario_play(scenario, sandbox, tasks):
    url = scenario.api_url(sandbox) if callable(scenario.api_url) else (scenario.api_url or sandbox.url)
    return build_play(tasks, api_url=url, api_retries=scenario.api_retries, api_timeout=scenario.api_timeout)


def auth_env(artifacts, sandbox, auth):
    """The environment that carries the token the scenario authenticates with."""
    if auth is None:
        return {}
    if callable(auth):
        token = auth(sandbox)
        artifacts.add_secret(token)
    else:
        token = sandbox.admin_token(auth)
    return {"LATITUDESH_AUTH_TOKEN": token}


def run_scenario(artifacts, runner, scenario):
    sandbox = SandboxProcess(artifacts, scenario.id)
    outcome = Outcome(scenario, sandbox)
    try:
        if scenario.setup:
            outcome.context = scenario.setup(sandbox)
        outcome.before = sandbox.control.state()
        env = auth_env(artifacts, sandbox, scenario.auth)
        for rule in scenario.faults:
            sandbox.control.fault(**rule)
        task = scenario.task(outcome.context) if callable(scenario.task) else scenario.task
        steps = [[dict(task, name="case", ignore_errors=True)]]
        steps += [step(outcome.context) if callable(step) else list(step) for step in scenario.steps]
        for number, tasks in enumerate(steps):
            sandbox.control.clear_log()
            run = runner.run(scenario_play(scenario, sandbox, tasks), "%s-%d" % (scenario.id, number), extra_env=env)
            if number == 0 and scenario.settle:
                time.sleep(scenario.settle)
            outcome.runs.append(run)
            outcome.logs.append(sandbox.control.log())
            outcome.states.append(sandbox.control.state())
        outcome.after = outcome.states[-1]
    except Exception as exc:  # pylint: disable=broad-except
        outcome.error = exc
    finally:
        sandbox.stop()
    return outcome


def default_jobs():
    value = os.environ.get("FUNCTIONAL_JOBS")
    if value:
        return max(1, int(value))
    return min(4, (os.cpu_count() or 2) + 1)


def run_parallel(function, items, jobs=None):
    """``{item.id: function(item)}``, up to ``jobs`` at a time (each item has its own sandbox)."""
    items = list(items)
    if not items:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
        futures = dict((item.id, pool.submit(function, item)) for item in items)
        return dict((key, future.result()) for key, future in futures.items())


class Job(object):
    """A named piece of work for ``run_jobs``."""

    def __init__(self, id, function, *args, **kwargs):
        self.id = id
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __call__(self):
        return self.function(*self.args, **self.kwargs)


class JobFailed(object):
    """What ``run_jobs`` keeps for a job that raised: ``get`` raises it again in the test that asks."""

    def __init__(self, exc):
        self.exc = exc


def run_jobs(jobs, max_workers=None):
    """``{job.id: result}``, running up to ``max_workers`` jobs at a time; see ``job_result``."""
    def call(job):
        try:
            return job()
        except Exception as exc:  # pylint: disable=broad-except
            return JobFailed(exc)
    return run_parallel(call, jobs, max_workers)


def job_result(results, key):
    value = results[key]
    if isinstance(value, JobFailed):
        raise value.exc
    return value


def selected(request, argname):
    """The parameter values of ``argname`` of the tests selected in the requesting module."""
    values, seen = [], set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec is not None and argname in callspec.params:
            value = callspec.params[argname]
            if value.id not in seen:
                seen.add(value.id)
                values.append(value)
    return values


# --------------------------------------------------------------------------
# Common checks
# --------------------------------------------------------------------------

def assert_no_traceback(run):
    assert "Traceback" not in run.text, run.describe()
    assert "MODULE FAILURE" not in run.text, run.describe()


def assert_one_paragraph(result, run):
    msg = result["result"].get("msg")
    assert isinstance(msg, str) and msg.strip(), run.describe()
    assert "\n" not in msg, "the message spans several lines: %r" % msg
    assert "module_stderr" not in result["result"], run.describe()


def verify(outcome):
    """The checks every Scenario gets: status, message, no traceback, request counts, then its own."""
    scenario = outcome.scenario
    if outcome.error is not None:
        raise AssertionError("scenario %s could not run: %r" % (scenario.id, outcome.error))
    run = outcome.run
    for step in outcome.runs:
        assert_no_traceback(step)
    result = outcome.result
    status = result["status"]
    assert status == scenario.expect or (scenario.expect == "ok" and status == "changed"), (
        "expected %s, got %s\n%s" % (scenario.expect, status, outcome.describe()))
    if status == "failed":
        assert_one_paragraph(result, run)
    if scenario.changed is not None:
        assert result["result"].get("changed") is scenario.changed, "changed=%r, expected %r: %r" % (
            result["result"].get("changed"), scenario.changed, outcome.msg)
    for pattern in scenario.msg:
        assert re.search(pattern, outcome.msg, re.I | re.S), "%r not in the message %r" % (pattern, outcome.msg)
    for pattern in scenario.msg_not:
        assert not re.search(pattern, outcome.msg, re.I | re.S), "%r in the message %r" % (pattern, outcome.msg)
    for method, count in (scenario.requests or {}).items():
        assert outcome.count(method) == count, "%d %s request(s), expected %d\n%s" % (
            outcome.count(method), method, count, outcome.describe())
    if scenario.check:
        scenario.check(outcome)
