# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Key hygiene in the team_api_keys role: rotation by token age and the audit in each team's summary.

Ages are moved without waiting: ``team_api_keys_audit_now`` sets the moment the role measures
against (the controller's side), and the sandbox's clock and seeded timestamps set what the API
reports (``created_at``, ``last_used_at``).
"""

import datetime
import json
import os

import pytest
import yaml

from harness import API, api_request, assert_no_traceback, build_play, task_name

pytestmark = pytest.mark.fault

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def methods(log):
    return [entry["method"] for entry in log if entry["method"] in WRITES]


def days_from_now(days):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return moment.replace(microsecond=0).isoformat()


def role_play(token_dir, keys, **role_vars):
    role_vars.update(
        team_api_keys_token_dir=token_dir,
        team_api_keys_teams=[{"name": "platform", "auth_token": "{{ lookup('env', 'LATITUDESH_AUTH_TOKEN') }}",
                              "api_keys": keys}],
    )
    play = build_play([], api_url="{{ lookup('env', 'LATITUDESH_API_URL') }}")[0]
    play.pop("tasks")
    play["roles"] = [{"role": "latitudesh.cloud.team_api_keys", "vars": role_vars}]
    return yaml.safe_dump([play], sort_keys=False, width=1000)


def summary(run):
    return run.task("Summarise team platform")["result"]["msg"]


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def token_dir(tmp_path, artifacts):
    path = str(tmp_path / "credentials")
    artifacts.add_token_dir(path)
    return path


def test_a_token_older_than_the_maximum_is_rotated_into_its_file(sandbox, control, run_play, token_dir):
    path = os.path.join(token_dir, "platform", "aged.token")
    assert run_play(role_play(token_dir, [{"name": "aged"}])).rc == 0
    first_token = read(path)
    record = json.loads(read(os.path.join(token_dir, "platform", ".latitudesh-tokens.json")))["tokens"]["aged.token"]
    assert record["id"] == sandbox.key("aged")["id"] and record["token_last_slice"] == first_token[-5:]
    control.clear_log()
    young = run_play(role_play(token_dir, [{"name": "aged"}], team_api_keys_max_token_age_days=90,
                               team_api_keys_audit_now=days_from_now(89)))
    assert young.rc == 0 and methods(control.log()) == [], young.describe()
    old = run_play(role_play(token_dir, [{"name": "aged"}], team_api_keys_max_token_age_days=90,
                             team_api_keys_audit_now=days_from_now(100)))
    assert old.rc == 0, old.describe()
    assert methods(control.log()) == ["PUT"]
    assert read(path) != first_token and read(path) == sandbox.key("aged")["token"]
    result = summary(old)
    assert result["rotated"] == ["aged"], result
    assert result["too_old"] == [{"name": "aged", "token_age_days": 100, "max_token_age_days": 90, "rotated": True}]
    # The record now describes the new token, issued just now: the next real run leaves it alone.
    record = json.loads(read(os.path.join(token_dir, "platform", ".latitudesh-tokens.json")))["tokens"]["aged.token"]
    assert record["token_last_slice"] == read(path)[-5:] and record["issued_at"] >= days_from_now(-1)
    control.clear_log()
    again = run_play(role_play(token_dir, [{"name": "aged"}], team_api_keys_max_token_age_days=90))
    assert again.rc == 0 and methods(control.log()) == [], again.describe()


def test_a_settings_change_does_not_reset_the_token_age(sandbox, control, run_play, token_dir):
    """A PATCH 50 days in changes updated_at; 100 days in, the 100-day-old token is still rotated."""
    assert run_play(role_play(token_dir, [{"name": "patched"}])).rc == 0
    control.clear_log()
    control.set_clock(shift_days=50)
    patched = run_play(role_play(token_dir, [{"name": "patched", "allowed_ips": ["10.1.0.0/16"]}],
                                 team_api_keys_max_token_age_days=90, team_api_keys_audit_now=days_from_now(50)))
    assert patched.rc == 0 and methods(control.log()) == ["PATCH"], patched.describe()
    assert sandbox.key("patched")["updated_at"] > sandbox.key("patched")["created_at"]
    control.clear_log()
    control.set_clock(shift_days=50)
    rotated = run_play(role_play(token_dir, [{"name": "patched", "allowed_ips": ["10.1.0.0/16"]}],
                                 team_api_keys_max_token_age_days=90, team_api_keys_audit_now=days_from_now(100)))
    assert rotated.rc == 0 and methods(control.log()) == ["PUT"], rotated.describe()
    assert summary(rotated)["too_old"][0]["token_age_days"] == 100


def test_a_token_of_unknown_age_is_reported_not_rotated(sandbox, control, run_play, token_dir):
    """ci-deployer's token was issued outside the collection: its age cannot be known."""
    run = run_play(role_play(token_dir, [{"name": "ci-deployer", "max_token_age_days": 1}],
                             team_api_keys_audit_now=days_from_now(400)))
    assert run.rc == 0, run.describe()
    assert methods(control.log()) == []
    assert summary(run)["token_age_unknown"] == ["ci-deployer"]


def test_a_token_rotated_elsewhere_has_an_unknown_age(sandbox, control, run_play, token_dir):
    assert run_play(role_play(token_dir, [{"name": "elsewhere"}])).rc == 0
    key_id = sandbox.key("elsewhere")["id"]
    status, _body = api_request(sandbox, "PUT", "%s/%s" % (API, key_id), sandbox.admin_token(),
                                {"data": {"type": "api_keys", "id": key_id, "attributes": {"name": "elsewhere"}}})
    assert status == 200
    control.clear_log()
    run = run_play(role_play(token_dir, [{"name": "elsewhere"}], team_api_keys_max_token_age_days=30,
                             team_api_keys_audit_now=days_from_now(60)))
    assert run.rc == 0 and methods(control.log()) == [], run.describe()
    assert summary(run)["token_age_unknown"] == ["elsewhere"]


def test_check_mode_says_which_keys_would_be_rotated_and_why(sandbox, control, run_play, token_dir):
    assert run_play(role_play(token_dir, [{"name": "c1"}, {"name": "c2", "max_token_age_days": 365}])).rc == 0
    control.clear_log()
    run = run_play(role_play(token_dir, [{"name": "c1"}, {"name": "c2", "max_token_age_days": 365}],
                             team_api_keys_max_token_age_days=90, team_api_keys_audit_now=days_from_now(120)),
                   check=True)
    assert run.rc == 0, run.describe()
    assert methods(control.log()) == []
    result = summary(run)
    assert result["rotated"] == ["c1"] and "prediction" in result["note"], result
    assert result["too_old"] == [{"name": "c1", "token_age_days": 120, "max_token_age_days": 90, "rotated": True}]


def test_the_admin_tokens_own_key_is_reported_too_old_but_never_rotated(sandbox, control, run_play, token_dir):
    admin = sandbox.key("admin")
    directory = os.path.join(token_dir, "platform")
    os.makedirs(directory)
    with open(os.path.join(directory, ".latitudesh-tokens.json"), "w", encoding="utf-8") as handle:
        json.dump({"version": 1, "tokens": {"admin.token": {
            "id": admin["id"], "name": "admin", "token_last_slice": admin["token"][-5:],
            "issued_at": days_from_now(-200)}}}, handle)
    with open(os.path.join(directory, "admin.token"), "w", encoding="utf-8") as handle:
        handle.write(admin["token"])
    run = run_play(role_play(token_dir, [{"name": "admin"}], team_api_keys_max_token_age_days=90))
    assert run.rc == 0 and methods(control.log()) == [], run.describe()
    assert summary(run)["too_old"] == [{"name": "admin", "token_age_days": 200, "max_token_age_days": 90,
                                        "rotated": False}]


def test_the_summary_carries_the_audit_of_the_keys_as_the_run_left_them(sandbox, control, run_play, token_dir):
    control.key_times(team="platform", name="monitoring", created_at=days_from_now(-400), last_used_at=None)
    control.key_times(team="platform", name="ci-deployer", created_at=days_from_now(-400),
                      last_used_at=days_from_now(-200))
    run = run_play(role_play(token_dir, [{"name": "fresh", "allowed_ips": ["10.0.0.0/8"]},
                                         {"name": "ci-deployer", "state": "absent"}]))
    assert run.rc == 0, run.describe()
    findings = dict((entry["name"], entry["findings"]) for entry in summary(run)["findings"])
    assert findings["monitoring"] == ["never_used"], findings
    assert "ci-deployer" not in findings, "a key the run deleted is still audited"
    assert "fresh" not in findings, "a new key limited to a network has no finding"
    assert findings["admin"] == ["unrestricted_write"]
    off = run_play(role_play(token_dir, [{"name": "fresh", "allowed_ips": ["10.0.0.0/8"]}], team_api_keys_audit=False))
    assert off.rc == 0 and "findings" not in summary(off)


def test_fail_on_findings_fails_the_play_after_converging(sandbox, control, run_play, token_dir):
    control.key_times(team="platform", name="monitoring", created_at=days_from_now(-400), last_used_at=None)
    run = run_play(role_play(token_dir, [{"name": "gated", "allowed_ips": ["10.0.0.0/8"]}],
                             team_api_keys_fail_on_findings=["never_used"]))
    assert_no_traceback(run)
    assert run.rc != 0, run.describe()
    failed = [entry for entry in run.results if entry["status"] == "failed"]
    assert [task_name(entry) for entry in failed] == ["Fail on the audit findings that remain after converging"]
    msg = failed[0]["result"]["msg"]
    assert "team platform, key 'monitoring'" in msg and "never_used" in msg and "unrestricted_write" not in msg, msg
    # The gate comes after converging: the new key and its token file exist.
    assert read(os.path.join(token_dir, "platform", "gated.token")) == sandbox.key("gated")["token"]
    passing = run_play(role_play(token_dir, [{"name": "gated", "allowed_ips": ["10.0.0.0/8"]}],
                                 team_api_keys_fail_on_findings=["token_too_old"]))
    assert passing.rc == 0, passing.describe()
