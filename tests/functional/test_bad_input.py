# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Bad input: knowably wrong options fail before any API request, with a message naming the option.

The module cases run as tasks of two playbooks, and the role cases as blocks of a third, side by
side against one sandbox. Each case talks to the sandbox under its own base path (``<url>/case-<id>``), so a
request that a case should not have made shows up in the request log under that case's name.
"""

import pytest

from harness import GROUP, Job, SandboxProcess, assert_no_traceback, build_play, job_result, run_jobs

pytestmark = pytest.mark.badinput

KEY = "latitudesh.cloud.api_key"
INFO = "latitudesh.cloud.api_key_info"
LONG_NAME = "k" * 256


class Case(object):
    def __init__(self, id, args, options, module=KEY, api_url=None, role_vars=None):
        self.id = id
        self.role_vars = role_vars or {}  # role cases: other role variables than team_api_keys_teams
        self.args = args
        self.options = options  # every one of these must appear in the message
        self.module = module
        self.api_url = api_url  # a bad api_url under test replaces the per-case sandbox URL

    def __repr__(self):
        return self.id


MODULE_CASES = [
    Case("name-blank", {"name": ""}, ["name", "blank"]),
    Case("name-whitespace-only", {"name": "   "}, ["name", "blank"]),
    Case("name-256-characters", {"name": LONG_NAME}, ["name", "256", "255"]),
    Case("allowed_ips-invalid-address", {"name": "k", "allowed_ips": ["300.1.2.3"]}, ["allowed_ips", "300.1.2.3"]),
    Case("allowed_ips-invalid-prefix", {"name": "k", "allowed_ips": ["10.0.0.0/33"]}, ["allowed_ips", "10.0.0.0/33"]),
    Case("allowed_ips-hostname", {"name": "k", "allowed_ips": ["example.com"]}, ["allowed_ips", "example.com"]),
    Case("allowed_ips-invalid-ipv6", {"name": "k", "allowed_ips": ["2001:db8::/129"]}, ["allowed_ips"]),
    Case("allowed_ips-blank-entry", {"name": "k", "allowed_ips": [""]}, ["allowed_ips"]),
    Case("allowed_ips-not-a-list", {"name": "k", "allowed_ips": {"a": 1}}, ["allowed_ips", "list"]),
    Case("read_only-not-a-bool", {"name": "k", "read_only": "sometimes"}, ["read_only", "bool"]),
    Case("force-not-a-bool", {"name": "k", "force": "please"}, ["force", "bool"]),
    Case("id-wrong-format", {"id": "12345"}, ["id", "12345"]),
    Case("id-path-traversal", {"id": "tok_abc/../../x"}, ["id"]),
    Case("id-and-name-missing", {"read_only": True}, ["id", "name"]),
    Case("state-unknown", {"name": "k", "state": "rotated"}, ["state", "rotated"]),
    Case("option-unknown", {"name": "k", "colour": "red"}, ["colour"]),
    Case("api_url-without-scheme", {"name": "k"}, ["api_url", "api.latitude.sh"], api_url="api.latitude.sh"),
    Case("api_url-ftp-scheme", {"name": "k"}, ["api_url"], api_url="ftp://api.latitude.sh"),
    Case("api_url-no-host", {"name": "k"}, ["api_url"], api_url="https://"),
    Case("api_url-plain-http-remote", {"name": "k"}, ["api_url", "http"], api_url="http://api.latitude.sh"),
    Case("api_url-query-string", {"name": "k"}, ["api_url", "query"], api_url="https://api.latitude.sh/?v=1"),
    Case("api_timeout-negative", {"name": "k", "api_timeout": -1}, ["api_timeout"]),
    Case("api_timeout-zero", {"name": "k", "api_timeout": 0}, ["api_timeout"]),
    Case("api_timeout-not-a-number", {"name": "k", "api_timeout": "soon"}, ["api_timeout"]),
    Case("api_retries-negative", {"name": "k", "api_retries": -1}, ["api_retries"]),
    Case("validate_certs-not-a-bool", {"name": "k", "validate_certs": "maybe"}, ["validate_certs"]),
    Case("auth_token-empty", {"name": "k", "auth_token": ""}, ["auth_token"]),
    Case("auth_token-whitespace", {"name": "k", "auth_token": "   "}, ["auth_token"]),
    Case("auth_token-missing", {"name": "k", "auth_token": "{{ omit }}"}, ["auth_token"]),
    Case("token_path-nul", {"name": "k", "token_path": "/tmp/latitudesh-bad-input/k\x00.token"}, ["token_path", "NUL"]),
    Case("token_path-newline", {"name": "k", "token_path": "/tmp/latitudesh-bad-input/k\n.token"},
         ["token_path", "control character"]),
    Case("token_path-name-256-bytes", {"name": "k", "token_path": "/tmp/latitudesh-bad-input/" + "t" * 256},
         ["token_path", "256 bytes", "255"]),
    Case("token_path-file-in-the-way", {"name": "k", "token_path": "/etc/hostname/k.token"},
         ["token_path", "/etc/hostname", "not a directory"]),
    Case("token_path-is-a-directory", {"name": "k", "token_path": "/tmp"}, ["token_path", "directory"]),
    Case("token_vault_password-without-token_path", {"name": "k", "token_vault_password": "pw"},
         ["token_vault_password", "token_path"]),
    Case("info-api_timeout-negative", {"api_timeout": -5}, ["api_timeout"], module=INFO),
    Case("info-api_url-without-scheme", {}, ["api_url"], module=INFO, api_url="localhost:8765"),
    Case("info-option-unknown", {"state": "present"}, ["state"], module=INFO),
]


def team(**overrides):
    base = {"name": "platform", "auth_token": "{{ lookup('env', 'FUNCTIONAL_AUTH_TOKEN') }}",
            "api_keys": [{"name": "ci-new"}]}
    base.update(overrides)
    return dict((key, value) for key, value in base.items() if value is not None)


ROLE_CASES = [
    Case("role-teams-missing", None, ["team_api_keys_teams"]),
    Case("role-teams-not-a-list", {"name": "platform"}, ["team_api_keys_teams"]),
    Case("role-team-name-missing", [team(name=None)], ["name"]),
    Case("role-team-name-with-slash", [team(name="plat/form")], ["name", "/"]),
    Case("role-team-name-dot-dot", [team(name="..")], ["name"]),
    Case("role-team-declared-twice", [team(), team()], ["name", "twice"]),
    Case("role-auth_token-missing", [team(auth_token=None)], ["auth_token"]),
    Case("role-auth_token-blank", [team(auth_token=" ")], ["auth_token"]),
    Case("role-api_keys-missing", [team(api_keys=None)], ["api_keys"]),
    Case("role-api_keys-not-a-list", [team(api_keys=5)], ["api_keys", "list"]),
    Case("role-key-name-missing", [team(api_keys=[{"read_only": True}])], ["name"]),
    Case("role-key-name-blank", [team(api_keys=[{"name": ""}])], ["name", "blank"]),
    Case("role-key-name-256-characters", [team(api_keys=[{"name": LONG_NAME}])], ["name", "255"]),
    Case("role-key-name-with-slash", [team(api_keys=[{"name": "ci/deployer"}])], ["name", "/"]),
    Case("role-key-declared-twice", [team(api_keys=[{"name": "ci-new"}, {"name": "ci-new"}])], ["name", "twice"]),
    Case("role-team-name-300-bytes", [team(name="t" * 300)], ["name", "300 bytes", "255"]),
    Case("role-team-name-nul", [team(name="plat\x00form")], ["name", "NUL"]),
    Case("role-team-name-leading-dot", [team(name=".platform")], ["name", "'.'"]),
    Case("role-key-name-250-characters", [team(api_keys=[{"name": "k" * 250}])], ["name", "256 bytes", "255"]),
    Case("role-key-name-150-e-acute", [team(api_keys=[{"name": u"\u00e9" * 150}])], ["name", "300 bytes"]),
    Case("role-key-name-nul", [team(api_keys=[{"name": "ci\x00new"}])], ["name", "NUL"]),
    Case("role-key-name-control-character", [team(api_keys=[{"name": "ci\tnew"}])], ["name", "control character"]),
    Case("role-key-name-dot", [team(api_keys=[{"name": "."}])], ["name", "directory"]),
    Case("role-key-name-dot-dot", [team(api_keys=[{"name": ".."}])], ["name", "directory"]),
    Case("role-key-name-leading-dot", [team(api_keys=[{"name": ".ci"}])], ["name", "'.'"]),
    Case("role-one-token-for-two-teams", [team(), team(name="data")], ["auth_token", "same token", "platform", "data"]),
    Case("role-key-name-bidirectional-control", [team(api_keys=[{"name": u"ci\u202etxt"}])], ["name", "U+202E"]),
    Case("role-key-name-zero-width-space", [team(api_keys=[{"name": "ci-deployer"}, {"name": u"ci-deployer\u200b"}])],
         ["name", "U+200B", "invisible"]),
    Case("role-token-file-path-too-long", [team(api_keys=[{"name": "short"}, {"name": "k" * 240}])],
         ["api_keys[1]", "4095 bytes", "team_api_keys_token_dir"],
         role_vars={"team_api_keys_token_dir": "/tmp/latitudesh-bad-input/" + "/".join(["d" * 250] * 16)}),
    Case("role-key-names-nfc-and-nfd", [team(api_keys=[{"name": u"caf\u00e9"}, {"name": u"cafe\u0301"}])],
         ["name", "Unicode form"]),
    Case("role-key-id-declared-twice", [team(api_keys=[{"name": "a", "id": "tok_abc"}, {"name": "b", "id": "tok_abc"}])],
         ["id", "tok_abc", "twice"]),
    Case("role-read_only-not-a-bool", [team(api_keys=[{"name": "ci-new", "read_only": "sometimes"}])], ["read_only"]),
    Case("role-state-unknown", [team(api_keys=[{"name": "ci-new", "state": "rotated"}])], ["state", "rotated"]),
    Case("role-allowed_ips-invalid-cidr", [team(api_keys=[{"name": "ci-new", "allowed_ips": ["10.0.0.0/33"]}])],
         ["allowed_ips", "10.0.0.0/33"]),
    Case("role-allowed_ips-not-a-list-of-strings", [team(api_keys=[{"name": "ci-new", "allowed_ips": [{"ip": 1}]}])],
         ["allowed_ips"]),
]


def module_task(case, url):
    args = dict(case.args)
    args.setdefault("api_url", case.api_url or "%s/case-%s" % (url, case.id))
    return {"name": "case: %s" % case.id, case.module: args, "ignore_errors": True}


def role_block(case, url):
    include = {"ansible.builtin.include_role": {"name": "latitudesh.cloud.team_api_keys"}}
    if case.args is not None:
        include["vars"] = dict(case.role_vars, team_api_keys_teams=case.args)
    return {
        "name": "case: %s" % case.id,
        "module_defaults": {GROUP: {"api_url": "%s/case-%s" % (url, case.id), "api_retries": 0}},
        "block": [
            {"name": "marker: %s" % case.id, "ansible.builtin.debug": {"msg": "case %s" % case.id}},
            include,
        ],
        "rescue": [{"name": "rescued: %s" % case.id, "ansible.builtin.debug": {"msg": "rescued"}}],
    }


@pytest.fixture(scope="module")
def outcome(artifacts, runner, tmp_path_factory):
    """Both playbooks, run once; per case: its failed results and the requests under its base path."""
    sandbox = SandboxProcess(artifacts, "bad-input")
    try:
        token_dir = str(tmp_path_factory.mktemp("bad-input-tokens"))
        artifacts.add_token_dir(token_dir)
        # The token comes from module_defaults, not from LATITUDESH_AUTH_TOKEN, so that a task can
        # leave it out entirely (auth_token-missing).
        env = {"FUNCTIONAL_AUTH_TOKEN": sandbox.admin_token()}
        defaults = {"api_retries": 0, "auth_token": "{{ lookup('env', 'FUNCTIONAL_AUTH_TOKEN') }}"}
        half = len(MODULE_CASES) // 2
        plays = [
            build_play([module_task(case, sandbox.url) for case in MODULE_CASES[:half]], defaults=defaults),
            build_play([module_task(case, sandbox.url) for case in MODULE_CASES[half:]], defaults=defaults),
            build_play([role_block(case, sandbox.url) for case in ROLE_CASES],
                       play_vars={"team_api_keys_token_dir": token_dir}),
        ]
        # Three playbooks side by side: the cases share no state but the (unused) sandbox.
        runs = run_jobs([Job(number, runner.run, play, "bad-input-%d" % number, extra_env=env)
                         for number, play in enumerate(plays)])
        module_runs = [job_result(runs, 0), job_result(runs, 1)]
        role_run = job_result(runs, 2)
        log = sandbox.control.log()
        keys = sandbox.team()["keys"]
    finally:
        sandbox.stop()
    return {"module": module_runs, "role": role_run, "log": log, "keys": keys}


def requests_of(outcome, case):
    return [entry for entry in outcome["log"] if entry["path"].startswith("/case-%s/" % case.id)]


def role_failures(run, case):
    """The failed results between this case's marker and the next one."""
    inside, failures = False, []
    for entry in run.results:
        if entry["task"].startswith("marker: "):
            inside = entry["task"] == "marker: %s" % case.id
        elif inside and entry["status"] == "failed":
            failures.append(entry)
    return failures


def check_message(msg, case, run):
    assert isinstance(msg, str) and msg.strip(), run.describe()
    for word in case.options:
        assert word.lower() in msg.lower(), "%r is not named in the message %r" % (word, msg)


@pytest.mark.parametrize("case", MODULE_CASES, ids=[case.id for case in MODULE_CASES])
def test_module_rejects_bad_input(case, outcome):
    run = outcome["module"][0 if case in MODULE_CASES[:len(MODULE_CASES) // 2] else 1]
    assert_no_traceback(run)
    result = run.task("case: %s" % case.id)
    assert result["status"] == "failed", run.describe()
    check_message(result["result"].get("msg"), case, run)
    assert requests_of(outcome, case) == [], "a request was sent before the input was rejected"


@pytest.mark.parametrize("case", ROLE_CASES, ids=[case.id for case in ROLE_CASES])
def test_role_rejects_bad_input(case, outcome):
    run = outcome["role"]
    assert_no_traceback(run)
    failures = role_failures(run, case)
    assert len(failures) == 1, "expected one failed task for %s\n%s" % (case.id, run.describe())
    check_message(failures[0]["result"].get("msg"), case, run)
    assert requests_of(outcome, case) == [], "a request was sent before the input was rejected: %s" % (
        requests_of(outcome, case),)


def test_no_request_reached_the_api_and_no_key_was_made(outcome):
    """Across both playbooks the sandbox saw no request at all and still holds only its seed keys."""
    assert outcome["log"] == []
    assert sorted(key["name"] for key in outcome["keys"]) == ["admin", "ci-deployer", "monitoring"]
