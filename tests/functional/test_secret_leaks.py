# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Secrets never leak: no admin token and no generated token in any output or file of a run.

The secrets are every token the sandboxes issued or were seeded with (their token journals)
plus the bogus tokens the tests invent. The runs use ``-vvv`` and ``--diff``, so ``invocation``,
diffs, warnings and error messages are all in the scanned output. The only places a token may
appear are a module result's ``"token"`` member and the role's ``*.token`` files.
"""

import os
import secrets
import stat
import subprocess
import sys

import pytest

import leakscan
from harness import API, ITEM, Job, SandboxProcess, assert_no_traceback, build_play, job_result, run_jobs

pytestmark = pytest.mark.leak

HERE = os.path.dirname(os.path.abspath(__file__))


def scan(artifacts, paths, allow=()):
    found = leakscan.load_secrets(artifacts.journal_files())
    assert found, "no secrets to look for: the token journals are empty"
    return leakscan.scan_paths(paths, found, allow_token_dirs=list(allow), exclude=artifacts.journal_files())


def sanctioned_count(run, token):
    return sum(run.text.count(form % token) for form in ('"token": "%s"', '"token":"%s"'))


def play_env(sandbox, **extra):
    env = {"LATITUDESH_API_URL": sandbox.url, "LATITUDESH_AUTH_TOKEN": sandbox.admin_token()}
    env.update(extra)
    return env


KEY = "latitudesh.cloud.api_key"
MODULE_SUCCESSES = [
    {"name": "create", KEY: {"name": "leak-create", "allowed_ips": ["10.0.0.0/24"]}},
    {"name": "create in check mode", KEY: {"name": "leak-check"}, "check_mode": True},
    {"name": "update with diff", KEY: {"name": "leak-create", "allowed_ips": ["10.1.0.0/24"], "read_only": True}},
    {"name": "rotate, result shown", KEY: {"name": "leak-create", "state": "regenerated"}},
    {"name": "rotate, no_log", KEY: {"name": "ci-deployer", "state": "regenerated"}, "no_log": True},
    {"name": "list", "latitudesh.cloud.api_key_info": {}},
    {"name": "rotate the key in use", KEY: {"name": "admin", "state": "regenerated"}, "ignore_errors": True},
    {"name": "bad token", "latitudesh.cloud.api_key_info": {"auth_token": "{{ lookup('env', 'BOGUS_TOKEN') }}"},
     "ignore_errors": True},
    {"name": "read-only token writes", KEY: {"name": "leak-ro", "auth_token": "{{ lookup('env', 'READ_ONLY_TOKEN') }}"},
     "ignore_errors": True},
]
MODULE_FAILURES = [
    {"name": "error page echoes the token", "latitudesh.cloud.api_key_info": {}, "ignore_errors": True},
    {"name": "create, answer lost", KEY: {"name": "leak-ambiguous"}, "ignore_errors": True},
    {"name": "rotate, answer malformed", KEY: {"name": "leak-create", "state": "regenerated"}, "ignore_errors": True},
    {"name": "rotate, answer empty", KEY: {"name": "ci-deployer", "state": "regenerated"}, "ignore_errors": True},
    {"name": "rotate, HTTP 500", KEY: {"name": "monitoring", "state": "regenerated"}, "ignore_errors": True},
]


def module_scenarios(artifacts, runner):
    """Create, check mode, update with diff, rotations (shown and no_log), a list, then failures of every kind."""
    sandbox = SandboxProcess(artifacts, "leaks-modules")
    try:
        bogus = secrets.token_hex(18)
        artifacts.add_secret(bogus)
        env = play_env(sandbox, BOGUS_TOKEN=bogus, READ_ONLY_TOKEN=sandbox.key("monitoring")["token"])
        first = runner.run(build_play(MODULE_SUCCESSES, api_url=sandbox.url), "leaks-modules-1", extra_env=env,
                           diff=True, verbosity=3)
        created = sandbox.key("leak-create")
        # Writes whose answers are lost or broken, and an error page that echoes the request's
        # Authorization header back.
        echo = "<html><body><pre>GET /auth/api_keys\nAuthorization: %s\n</pre>Bad Gateway</body></html>" % (
            sandbox.admin_token())
        for rule in (
            dict(method="GET", path=API, kind="status", status=502, body=echo, content_type="text/html", times=2),
            dict(method="POST", path=API, kind="drop_after_apply"),
            dict(method="PUT", path=ITEM, kind="malformed_json"),
            dict(method="PUT", path=ITEM, kind="empty_body"),
            dict(method="PUT", path=ITEM, kind="status", status=500),
        ):
            sandbox.control.fault(**rule)
        second = runner.run(build_play(MODULE_FAILURES, api_url=sandbox.url, api_retries=1), "leaks-modules-2",
                            extra_env=env, diff=True, verbosity=3)
        return {"runs": [first, second], "created": created}
    finally:
        sandbox.stop()


def cut_answers(artifacts, runner):
    """A create and a rotate whose 2xx answer was cut short, with the new token inside the cut body.

    A proxy that truncates an answer leaves ``{"data":{..."token":"<new token>...`` and no valid
    JSON; the module quotes a snippet of the body. (Members may come in any order; here the token
    comes first, so that the whole token is inside the snippet.)
    """
    sandbox = SandboxProcess(artifacts, "leaks-cut-answers")
    try:
        token = secrets.token_hex(18)
        artifacts.add_secret(token)
        cut = '{"data":{"attributes":{"token":"%s","name":"cut","token_last_slice":"%s","api_ver' % (token, token[-5:])
        sandbox.control.fault(method="POST", path=API, kind="status", status=201, body=cut)
        sandbox.control.fault(method="PUT", path=ITEM, kind="status", status=200, body=cut)
        tasks = [
            {"name": "create, answer cut", KEY: {"name": "cut"}, "ignore_errors": True},
            {"name": "rotate, answer cut", KEY: {"name": "ci-deployer", "state": "regenerated"}, "ignore_errors": True},
        ]
        run = runner.run(build_play(tasks, api_url=sandbox.url), "leaks-cut-answers", extra_env=play_env(sandbox),
                         diff=True, verbosity=3)
        return {"runs": [run]}
    finally:
        sandbox.stop()


ROLE_PLAYBOOK = """
- name: team keys
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/latitudesh.cloud.latitudesh:
      api_url: "{{ lookup('env', 'LATITUDESH_API_URL') }}"
      api_retries: 1
  roles:
    - role: latitudesh.cloud.team_api_keys
      vars:
        team_api_keys_token_dir: %(token_dir)s
        team_api_keys_purge: %(purge)s
        team_api_keys_vault_password: "%(vault)s"
        team_api_keys_teams:
          - name: platform
            auth_token: "{{ lookup('env', 'PLATFORM_TOKEN') }}"
            api_keys:
              - {name: deploy, allowed_ips: [10.0.0.0/24]}
              - {name: backup, read_only: true, state: %(state)s}
              - {name: ci-deployer}
              - {name: monitoring}
          - name: data
            auth_token: "{{ lookup('env', 'DATA_TOKEN') }}"
            api_keys:
              - {name: etl, state: %(state)s}
"""


def role_runs(artifacts, runner, token_dir):
    """The role twice: creates and a purge into plain token files, then rotations into Vault files."""
    sandbox = SandboxProcess(artifacts, "leaks-role")
    try:
        password = secrets.token_hex(12)
        artifacts.add_secret(password)
        env = play_env(sandbox, PLATFORM_TOKEN=sandbox.admin_token("platform"), DATA_TOKEN=sandbox.admin_token("data"),
                       VAULT_PASSWORD=password, LATITUDESH_AUTH_TOKEN=None)
        first = runner.run(ROLE_PLAYBOOK % dict(token_dir=token_dir, purge="true", vault="", state="present"),
                           "leaks-role-1", extra_env=env, diff=True, verbosity=3)
        vault = "{{ lookup('env', 'VAULT_PASSWORD') }}"
        second = runner.run(ROLE_PLAYBOOK % dict(token_dir=token_dir, purge="false", vault=vault, state="regenerated"),
                            "leaks-role-2", extra_env=env, diff=True, verbosity=3)
        return {"runs": [first, second], "token_dir": token_dir, "password": password,
                "state": sandbox.control.state()}
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def leak_runs(artifacts, runner, tmp_path_factory):
    """The three scenario sets, side by side, each against its own sandbox; all with -vvv and --diff."""
    token_dir = str(tmp_path_factory.mktemp("role-leaks") / "credentials")
    artifacts.add_token_dir(token_dir)
    return run_jobs([
        Job("modules", module_scenarios, artifacts, runner),
        Job("cut", cut_answers, artifacts, runner),
        Job("role", role_runs, artifacts, runner, token_dir),
    ])


def assert_leak_free(artifacts, runs, extra_paths=(), allow=()):
    for run in runs:
        assert_no_traceback(run)
    leaks = scan(artifacts, [run.run_dir for run in runs] + list(extra_paths), allow=allow)
    assert leaks == [], "\n".join(str(leak) for leak in leaks)


def test_module_scenarios_at_vvv_with_diff_leak_nothing(leak_runs, artifacts):
    outcome = job_result(leak_runs, "modules")
    first, second = outcome["runs"]
    assert first.task("create")["status"] == "changed", first.describe()
    assert first.task("rotate the key in use")["status"] == "failed"
    for task in ("bad token", "read-only token writes"):
        assert first.task(task)["status"] == "failed", first.describe()
    assert [second.task(task["name"])["status"] for task in MODULE_FAILURES] == ["failed"] * len(MODULE_FAILURES)
    assert "********" in second.task("error page echoes the token")["result"]["msg"]
    # The scan is not vacuous: the sanctioned return is there.
    assert sanctioned_count(first, outcome["created"]["token"]) >= 1
    assert_leak_free(artifacts, outcome["runs"])


def test_error_messages_never_quote_a_token_from_a_broken_answer(leak_runs, artifacts):
    outcome = job_result(leak_runs, "cut")
    run, = outcome["runs"]
    assert run.task("create, answer cut")["status"] == "failed", run.describe()
    assert run.task("rotate, answer cut")["status"] == "failed", run.describe()
    assert_leak_free(artifacts, outcome["runs"])


def test_role_with_token_files_and_vault_leaks_nothing(leak_runs, artifacts):
    outcome = job_result(leak_runs, "role")
    token_dir = outcome["token_dir"]
    assert_leak_free(artifacts, outcome["runs"], [token_dir], allow=[token_dir])


def test_role_writes_token_files_0600_in_0700_directories(leak_runs):
    """Plain files hold the key's current token; with a vault password the file decrypts to it."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    outcome = job_result(leak_runs, "role")
    for run in outcome["runs"]:
        assert run.rc == 0, run.describe()
    token_dir = outcome["token_dir"]
    teams = dict((team["name"], team) for team in outcome["state"]["teams"])
    assert sorted(key["name"] for key in teams["data"]["keys"]) == ["admin", "etl"], "purge left keys behind"
    vault = VaultLib([("default", VaultSecret(outcome["password"].encode("utf-8")))])
    expected = {("platform", "deploy"): False, ("platform", "backup"): True, ("data", "etl"): True}
    for (team, name), encrypted in expected.items():
        path = os.path.join(token_dir, team, name + ".token")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
        token, = [key["token"] for key in teams[team]["keys"] if key["name"] == name]
        if encrypted:
            assert content.startswith("$ANSIBLE_VAULT;") and token not in content, path
            assert vault.decrypt(content.encode("utf-8")).decode("utf-8") == token
        else:
            assert content == token
    for directory in (token_dir, os.path.join(token_dir, "platform"), os.path.join(token_dir, "data")):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory


def test_leakscan_finds_a_planted_token_and_masks_it(tmp_path):
    """The scanner itself: a leak is reported as file:line with only the last 4 characters."""
    token, other = secrets.token_hex(18), secrets.token_hex(18)
    journal = tmp_path / "journal"
    journal.write_text("%s\n%s\n" % (token, other))
    allowed = tmp_path / "tokens"
    allowed.mkdir()
    (allowed / "k.token").write_text(other)
    (allowed / "notes.txt").write_text("copied %s here\n" % other)
    out = tmp_path / "out"
    out.mkdir()
    (out / "ok.json").write_text('{"changed": true, "token": "%s"}\n' % token)
    (out / "bad.log").write_text("line one\nmsg: new token is %s\n" % token)
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "leakscan.py"), "--journal", str(journal),
         "--allow-token-files", str(allowed), str(out), str(allowed), str(journal)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 1, proc
    lines = sorted(proc.stdout.splitlines())
    assert lines == sorted([
        "%s:2: token ****%s" % (out / "bad.log", token[-4:]),
        "%s:1: token ****%s" % (allowed / "notes.txt", other[-4:]),
    ]), proc.stdout
    assert token not in proc.stdout + proc.stderr and other not in proc.stdout + proc.stderr
    clean = subprocess.run([sys.executable, os.path.join(HERE, "leakscan.py"), "--journal", str(journal),
                            str(out / "ok.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    assert clean.returncode == 0, clean


def test_every_run_of_the_session_is_leak_free(artifacts):
    """Runs last: every output and file of every run of this session (all test modules), scanned."""
    paths = [artifacts.base] + list(artifacts.token_dirs)
    leaks = scan(artifacts, paths, allow=artifacts.token_dirs)
    assert leaks == [], "\n".join(str(leak) for leak in leaks)
