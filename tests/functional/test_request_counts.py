# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Requests per operation: every operation sends exactly the requests expected of it, which is the
fewest it can be done with, except on a row marked as not gated (its note says why).

Each operation is one task with the token of a team of its own, all in one playbook against one
sandbox, so the sandbox's request log tells the requests of each task apart. The tokens reach
Ansible through environment variables, like every secret of this suite.
"""

import collections
import os

import pytest

from harness import SandboxProcess, build_play

API_KEY = "latitudesh.cloud.api_key"
API_KEY_INFO = "latitudesh.cloud.api_key_info"
GET = {"GET": 1}
COUNT_KEY = {"name": "ci-deployer", "read_only": False, "allowed_ips": ["10.0.0.0/24"]}
ROLE_KEYS = [{"name": "role-key-%d" % index, "read_only": False, "allowed_ips": []} for index in range(5)]
ROLE_COLD_KEYS = [{"name": "role-new-%d" % index, "read_only": False, "allowed_ips": []} for index in range(3)]


class CountScenario(object):
    """One operation: ``minimum`` is the fewest requests it can be done with, ``expected`` what the
    collection sends (the minimum, unless ``gated`` is False and ``note`` says why not)."""

    def __init__(self, ident, label, module, args, minimum, seed_keys=(), check_mode=False,
                 expected=None, gated=True, note=""):
        self.ident = ident
        self.label = label
        self.module = module
        self.args = args
        self.minimum = minimum
        self.expected = expected if expected is not None else minimum
        self.seed_keys = list(seed_keys)
        self.check_mode = check_mode
        self.gated = gated
        self.note = note
        self.team = "count-" + ident
        self.token_variable = "COUNT_TOKEN_" + ident.upper()

    def task(self, token_dir):
        token = "{{ lookup('ansible.builtin.env', '%s') }}" % self.token_variable
        if self.module == "role":
            return {
                "name": "Count %s" % self.ident,
                "ansible.builtin.include_role": {"name": "latitudesh.cloud.team_api_keys"},
                "vars": {
                    "team_api_keys_teams": [{"name": self.team, "auth_token": token, "api_keys": self.args}],
                    "team_api_keys_token_dir": token_dir,
                },
            }
        return {"name": "Count %s" % self.ident, self.module: dict(self.args, auth_token=token),
                "check_mode": self.check_mode, "no_log": True}


COUNT_SCENARIOS = [
    CountScenario("present", "api_key present, unchanged", API_KEY, dict(COUNT_KEY), GET, [COUNT_KEY]),
    CountScenario("create", "api_key present, missing (create)", API_KEY, dict(COUNT_KEY), {"GET": 1, "POST": 1}),
    CountScenario("update", "api_key present, settings differ (update)", API_KEY,
                  dict(COUNT_KEY, read_only=True), {"GET": 1, "PATCH": 1}, [COUNT_KEY]),
    CountScenario("rotate", "api_key regenerated (rotate)", API_KEY,
                  {"name": COUNT_KEY["name"], "state": "regenerated"}, {"GET": 1, "PUT": 1}, [COUNT_KEY]),
    CountScenario("absent", "api_key absent, exists (delete)", API_KEY,
                  {"name": COUNT_KEY["name"], "state": "absent"}, {"GET": 1, "DELETE": 1}, [COUNT_KEY]),
    CountScenario("absent_gone", "api_key absent, already gone", API_KEY,
                  {"name": COUNT_KEY["name"], "state": "absent"}, GET),
    CountScenario("info", "api_key_info", API_KEY_INFO, {}, GET, [COUNT_KEY]),
    CountScenario("check_create", "check mode: create", API_KEY, dict(COUNT_KEY), GET, check_mode=True),
    CountScenario("check_update", "check mode: update", API_KEY, dict(COUNT_KEY, read_only=True), GET,
                  [COUNT_KEY], check_mode=True),
    CountScenario("check_rotate", "check mode: rotate", API_KEY,
                  {"name": COUNT_KEY["name"], "state": "regenerated"}, GET, [COUNT_KEY], check_mode=True),
    CountScenario("check_absent", "check mode: delete", API_KEY,
                  {"name": COUNT_KEY["name"], "state": "absent"}, GET, [COUNT_KEY], check_mode=True),
    CountScenario("role_rerun", "team_api_keys re-run, 1 team, %d unchanged keys" % len(ROLE_KEYS),
                  "role", ROLE_KEYS, GET, ROLE_KEYS),
    CountScenario("role_cold", "team_api_keys cold, 1 team, %d new keys" % len(ROLE_COLD_KEYS), "role",
                  ROLE_COLD_KEYS, {"GET": 1, "POST": len(ROLE_COLD_KEYS)},
                  expected={"GET": 1 + len(ROLE_COLD_KEYS), "POST": len(ROLE_COLD_KEYS)}, gated=False,
                  note="the role calls api_key once per key to change, and each call reads the list again"),
]


def method_counts(entries):
    """Successful requests per method, e.g. {"GET": 1, "POST": 1}."""
    return dict(collections.Counter(entry["method"] for entry in entries
                                    if entry["status"] is not None and entry["status"] < 400))


def describe_counts(counts):
    order = ("GET", "POST", "PATCH", "PUT", "DELETE")
    return " + ".join("%d %s" % (counts[method], method) for method in order if counts.get(method)) or "none"


@pytest.fixture(scope="module")
def counted(artifacts, runner, tmp_path_factory):
    """Every scenario's successful requests and failed answers, from one playbook run."""
    sandbox = SandboxProcess(artifacts, "request-counts")
    try:
        env = {}
        for scenario in COUNT_SCENARIOS:
            env[scenario.token_variable] = sandbox.control.add_team(scenario.team, scenario.seed_keys)["admin_token"]
        token_dir = str(tmp_path_factory.mktemp("count-tokens"))
        artifacts.add_token_dir(token_dir)
        sandbox.control.clear_log()
        play = build_play([scenario.task(token_dir) for scenario in COUNT_SCENARIOS], api_url=sandbox.url)
        run = runner.run(play, "request-counts", extra_env=env)
        assert run.rc == 0, run.describe()
        entries = sandbox.control.log()
    finally:
        sandbox.stop()
    results = {}
    for scenario in COUNT_SCENARIOS:
        mine = [entry for entry in entries if entry["team"] == scenario.team]
        results[scenario.ident] = {
            "counts": method_counts(mine),
            "errors": [entry for entry in mine if entry["status"] is None or entry["status"] >= 400],
        }
    assert os.path.isdir(os.path.join(token_dir, "count-role_cold"))
    return results


@pytest.mark.parametrize("scenario", COUNT_SCENARIOS, ids=[scenario.ident for scenario in COUNT_SCENARIOS])
def test_requests_per_operation(counted, scenario):
    result = counted[scenario.ident]
    assert not result["errors"], "%s: failed requests %r" % (scenario.label, result["errors"])
    assert result["counts"] == scenario.expected, "%s sent %s, expected %s" % (
        scenario.label, describe_counts(result["counts"]), describe_counts(scenario.expected))


def test_gated_operations_send_the_minimum():
    """Only a scenario documented as not gated may expect more than the minimum."""
    for scenario in COUNT_SCENARIOS:
        if scenario.gated:
            assert scenario.expected == scenario.minimum, scenario.ident
        else:
            assert scenario.note, scenario.ident
