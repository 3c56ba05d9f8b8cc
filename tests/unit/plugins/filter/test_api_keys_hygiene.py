# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for key hygiene in the role filters: rotation by token age in api_key_plan, the
max_token_age_days checks of api_key_spec_errors, and the audit and gate of api_key_summary."""

from datetime import datetime, timedelta, timezone

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.latitudesh.cloud.plugins.filter.api_keys import (
    api_key_plan,
    api_key_spec_errors,
    api_key_summary,
)
from ansible_collections.latitudesh.cloud.tests.unit.plugins.filter.test_api_keys import AUTH_TOKEN, team_key
from ansible_collections.latitudesh.cloud.tests.unit.plugins.filter.test_api_keys_custody import (
    IN_USE_SLICE,
    TOKEN_DIR,
    found,
    outcome,
    registered,
)

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)
NOW_TEXT = "2026-12-06T12:00:00+00:00"


def ago(days=0, seconds=0):
    """An ISO time (UTC, +00:00 form as the API writes it) that many days and seconds before NOW."""
    return (NOW - timedelta(days=days, seconds=seconds)).isoformat()


def rotation(name, state="regenerated", action="rotate", **settings):
    item = dict(name=name, id=None, state=state, read_only=None, allowed_ips=None, action=action)
    item.update(settings)
    return item


def aged_plan(issued, max_token_age_days=90, declared=None, keys=None, **options):
    keys = [team_key("tok_c", "ci")] if keys is None else keys
    declared = [{"name": "ci"}] if declared is None else declared
    return api_key_plan(keys, declared, auth_token=AUTH_TOKEN, max_token_age_days=max_token_age_days,
                        token_issued_at=issued, now=NOW_TEXT, **options)


def too_old(name, days, limit, rotated=True):
    return {"name": name, "token_age_days": days, "max_token_age_days": limit, "rotated": rotated}


# --------------------------------------------------------------------------- api_key_plan: boundaries


def test_a_token_exactly_the_maximum_old_is_not_too_old():
    result = aged_plan({"tok_c": ago(days=90)})
    assert result["too_old"] == []
    assert result["token_age_unknown"] == []
    assert result["converge"] == []
    assert result["rotated"] == []
    assert result["unchanged"] == ["ci"]


def test_a_token_one_second_past_the_maximum_is_rotated():
    result = aged_plan({"tok_c": ago(days=90, seconds=1)})
    assert result["too_old"] == [too_old("ci", 90, 90)]
    assert result["rotated"] == ["ci"]
    assert result["unchanged"] == []
    assert result["converge"] == [rotation("ci")]


def test_a_rotated_key_keeps_its_token_path_and_settings():
    keys = [team_key("tok_c", "ci", allowed_ips=["10.0.0.0/24"])]
    result = aged_plan({"tok_c": ago(days=200)}, keys=keys, declared=[{"name": "ci", "allowed_ips": ["10.0.0.0/24"]}],
                       token_dir=TOKEN_DIR)
    assert result["converge"] == [rotation("ci", allowed_ips=["10.0.0.0/24"], token_path=TOKEN_DIR + "/ci.token")]
    assert result["too_old"] == [too_old("ci", 200, 90)]


def test_an_issue_time_a_little_ahead_counts_as_age_zero():
    """Clocks drift: an issue time up to a day ahead is young, not suspicious."""
    result = aged_plan({"tok_c": (NOW + timedelta(hours=20)).isoformat()}, max_token_age_days=0)
    assert result["too_old"] == [] and result["token_age_unknown"] == []
    assert result["unchanged"] == ["ci"]


def test_an_issue_time_far_in_the_future_makes_the_age_unknown():
    """A tampered record (issued_at 2099) or a wrong clock must not switch rotation off silently."""
    result = aged_plan({"tok_c": (NOW + timedelta(days=3)).isoformat()}, max_token_age_days=0)
    assert result["too_old"] == []
    assert result["token_age_unknown"] == ["ci"]
    assert result["unchanged"] == ["ci"]


def test_without_a_maximum_no_age_is_checked():
    result = aged_plan({"tok_c": ago(days=5000)}, max_token_age_days=None)
    assert (result["too_old"], result["token_age_unknown"], result["converge"]) == ([], [], [])
    assert result["unchanged"] == ["ci"]


# --------------------------------------------------------------------------- api_key_plan: per-key maximum


@pytest.mark.parametrize("role_wide, own, age, expected", [
    (90, 30, timedelta(days=45, hours=20), [too_old("ci", 45, 30)]),  # stricter own maximum wins; whole days
    (30, 90, timedelta(days=45), []),                           # laxer own maximum wins
    (None, 30, timedelta(days=45), [too_old("ci", 45, 30)]),    # own maximum without a role-wide one
    (90, 0, timedelta(hours=1), [too_old("ci", 0, 0)]),         # own 0 is a maximum, not "unset"
    (0, 90, timedelta(days=45), []),                            # role-wide 0 loses to the own maximum
    (0, None, timedelta(seconds=1), [too_old("ci", 0, 0)]),     # role-wide 0 applies when the key has none
    (90, "30", timedelta(days=45), [too_old("ci", 45, 30)]),    # a string of digits, as -e gives it
])
def test_the_keys_own_maximum_beats_the_role_wide_one(role_wide, own, age, expected):
    declared = {"name": "ci"}
    if own is not None:
        declared["max_token_age_days"] = own
    result = aged_plan({"tok_c": (NOW - age).isoformat()}, max_token_age_days=role_wide, declared=[declared])
    assert result["too_old"] == expected
    assert result["rotated"] == (["ci"] if expected else [])
    assert [item["action"] for item in result["converge"]] == (["rotate"] if expected else [])


def test_each_key_is_judged_by_its_own_maximum():
    keys = [team_key("tok_a", "a"), team_key("tok_b", "b"), team_key("tok_c", "c")]
    declared = [{"name": "a"}, {"name": "b", "max_token_age_days": 365}, {"name": "c", "max_token_age_days": 7}]
    issued = {"tok_a": ago(days=120), "tok_b": ago(days=120), "tok_c": ago(days=8)}
    result = aged_plan(issued, keys=keys, declared=declared)
    assert result["too_old"] == [too_old("a", 120, 90), too_old("c", 8, 7)]
    assert result["rotated"] == ["a", "c"]
    assert result["unchanged"] == ["b"]


# --------------------------------------------------------------------------- api_key_plan: unknown age


@pytest.mark.parametrize("issued", [{}, None, {"tok_c": None}, {"tok_c": ""}, {"tok_other": ago(days=500)}])
def test_a_token_of_unknown_age_is_listed_not_rotated(issued):
    keys = [team_key("tok_c", "ci"), team_key("tok_other", "other")]
    result = aged_plan(issued, keys=keys)
    assert result["token_age_unknown"] == ["ci"]
    assert result["too_old"] == []
    assert result["rotated"] == []
    assert result["converge"] == []
    assert result["unchanged"] == ["ci"]


def test_unknown_age_with_a_settings_change_is_only_updated():
    keys = [team_key("tok_c", "ci", read_only=False)]
    result = aged_plan({}, keys=keys, declared=[{"name": "ci", "read_only": True}])
    assert result["token_age_unknown"] == ["ci"]
    assert result["updated"] == ["ci"]
    assert result["converge"] == [rotation("ci", state="present", action="update", read_only=True)]


# --------------------------------------------------------------------------- api_key_plan: the admin token's key


def test_the_in_use_key_too_old_is_reported_not_rotated():
    keys = [team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE)]
    result = aged_plan({"tok_admin": ago(days=200)}, keys=keys, declared=[{"name": "admin"}])
    assert result["too_old"] == [too_old("admin", 200, 90, rotated=False)]
    assert result["rotated"] == []
    assert result["converge"] == []
    assert result["unchanged"] == ["admin"]


def test_the_in_use_key_too_old_still_gets_its_settings_change():
    keys = [team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE)]
    result = aged_plan({"tok_admin": ago(days=200)}, keys=keys,
                       declared=[{"name": "admin", "allowed_ips": ["192.0.2.10"]}])
    assert result["too_old"] == [too_old("admin", 200, 90, rotated=False)]
    assert result["converge"] == [rotation("admin", state="present", action="update", allowed_ips=["192.0.2.10"])]
    assert (result["updated"], result["rotated"]) == (["admin"], [])


# --------------------------------------------------------------------------- api_key_plan: keys not age-checked


@pytest.mark.parametrize("issued", [{"tok_c": ago(days=500)}, {}])
@pytest.mark.parametrize("declared, keys, action, state", [
    ({"name": "ci", "state": "regenerated"}, [team_key("tok_c", "ci")], "rotate", "regenerated"),
    ({"name": "ci"}, [], "create", "present"),
    ({"name": "ci", "state": "absent"}, [team_key("tok_c", "ci")], "delete", "absent"),
])
def test_keys_being_rotated_created_or_deleted_are_not_age_checked(declared, keys, action, state, issued):
    result = aged_plan(issued, keys=keys, declared=[declared], max_token_age_days=1)
    assert result["too_old"] == []
    assert result["token_age_unknown"] == []
    assert [(item["action"], item["state"]) for item in result["converge"]] == [(action, state)]


def test_an_absent_key_that_does_not_exist_is_not_age_checked():
    result = aged_plan({}, keys=[], declared=[{"name": "ci", "state": "absent"}], max_token_age_days=1)
    assert (result["too_old"], result["token_age_unknown"], result["converge"]) == ([], [], [])
    assert result["unchanged"] == ["ci"]


# --------------------------------------------------------------------------- api_key_plan: missing token files


@pytest.mark.parametrize("issued", [{"tok_c": ago(days=500)}, {}])
def test_a_key_reissued_for_its_missing_file_is_listed_once(issued):
    result = aged_plan(issued, token_dir=TOKEN_DIR, token_files=[], reissue_missing=True)
    assert result["missing_tokens"] == ["ci"]
    assert result["rotated"] == ["ci"]
    assert result["too_old"] == []
    assert result["token_age_unknown"] == []
    assert result["converge"] == [rotation("ci", action="reissue", token_path=TOKEN_DIR + "/ci.token")]


def test_a_too_old_key_without_its_file_is_rotated_into_it_without_reissue():
    result = aged_plan({"tok_c": ago(days=500)}, token_dir=TOKEN_DIR, token_files=[found("other.token")])
    assert result["missing_tokens"] == ["ci"]
    assert result["too_old"] == [too_old("ci", 500, 90)]
    assert result["converge"] == [rotation("ci", token_path=TOKEN_DIR + "/ci.token")]


def test_a_key_without_its_file_and_of_unknown_age_is_listed_twice_not_rotated():
    result = aged_plan({}, token_dir=TOKEN_DIR, token_files=[])
    assert result["missing_tokens"] == ["ci"]
    assert result["token_age_unknown"] == ["ci"]
    assert result["converge"] == []


# --------------------------------------------------------------------------- api_key_plan: time forms


@pytest.mark.parametrize("now", [
    "2026-12-06T12:00:00Z",
    "2026-12-06T12:00:00z",
    "2026-12-06T12:00:00+00:00",
    "2026-12-06T14:00:00+02:00",
    "2026-12-06T07:00:00-05:00",
    "2026-12-06T12:00:00",          # naive: taken as UTC
    " 2026-12-06T12:00:00+00:00 ",
    NOW,
])
@pytest.mark.parametrize("issued, expected", [
    ("2026-09-07T12:00:00Z", []),                                  # exactly 90 days
    ("2026-09-07T12:00:00+00:00", []),
    ("2026-09-07T14:00:00+02:00", []),
    ("2026-09-07T12:00:00", []),
    ("2026-09-07T11:59:59Z", [too_old("ci", 90, 90)]),            # one second more
    ("2026-09-07T13:59:59+02:00", [too_old("ci", 90, 90)]),
    ("2026-09-07T06:59:59-05:00", [too_old("ci", 90, 90)]),
    ("2026-09-07T11:59:59", [too_old("ci", 90, 90)]),
    ("2026-09-07T12:00:00.000001+00:00", []),
])
def test_times_with_any_offset_or_none_are_compared_in_utc(now, issued, expected):
    result = api_key_plan([team_key("tok_c", "ci")], [{"name": "ci"}], max_token_age_days=90,
                          token_issued_at={"tok_c": issued}, now=now)
    assert result["too_old"] == expected


@pytest.mark.parametrize("now", ["yesterday", "2026-13-01T00:00:00Z", "06/12/2026", 1765022400, ["2026-12-06"]])
def test_a_bad_now_is_an_error_naming_it(now):
    with pytest.raises(AnsibleFilterError) as raised:
        api_key_plan([team_key("tok_c", "ci")], [{"name": "ci"}], max_token_age_days=90, token_issued_at={}, now=now)
    assert str(raised.value) == (
        "api_key_plan: now must be an ISO 8601 date and time such as 2026-01-14T15:56:29+00:00, got %r." % (now,))


@pytest.mark.parametrize("value", ["last tuesday", "2026-02-30T00:00:00Z", 17])
def test_a_bad_issue_time_is_an_error_naming_the_key_id(value):
    with pytest.raises(AnsibleFilterError) as raised:
        aged_plan({"tok_c": value})
    assert str(raised.value) == (
        "api_key_plan: token_issued_at['tok_c'] must be an ISO 8601 date and time such as "
        "2026-01-14T15:56:29+00:00, got %r." % (value,))


@pytest.mark.parametrize("value", [-1, "-1", "abc", 1.5, True], ids=["int-1", "str-1", "abc", "1.5", "true"])
def test_a_bad_role_wide_maximum_is_an_error_not_a_rotation(value):
    """team_api_keys_max_token_age_days is not checked by api_key_spec_errors (which sees only the teams),
    and the role's argument spec lets -1 and true through as ints: the plan must refuse it before any
    key is converged, not rotate every key (-1) or fail with a ValueError ('abc')."""
    with pytest.raises(AnsibleFilterError) as raised:
        aged_plan({"tok_c": ago(days=1)}, max_token_age_days=value)
    assert "max_token_age_days" in str(raised.value)
    assert repr(value) in str(raised.value)


# --------------------------------------------------------------------------- api_key_spec_errors


def spec_errors(value):
    return api_key_spec_errors([{"name": "prod", "auth_token": AUTH_TOKEN,
                                 "api_keys": [{"name": "ci", "max_token_age_days": value}]}])


@pytest.mark.parametrize("value", [-1, "-1", "abc", "", 1.5, "1.5", True, False, [30], {"days": 30}])
def test_spec_errors_reject_a_maximum_that_is_not_whole_days(value):
    assert spec_errors(value) == [
        "team_api_keys_teams[0].api_keys[0] (key 'ci' in team 'prod'): max_token_age_days must be a whole number "
        "of days (0 or more), got %r." % (value,)]


@pytest.mark.parametrize("value", [0, 1, 90, 3650, "30", " 30 ", None])
def test_spec_errors_accept_whole_days(value):
    assert spec_errors(value) == []


def test_spec_errors_report_the_maximum_with_other_problems_of_the_key():
    errors = api_key_spec_errors([{"name": "prod", "auth_token": AUTH_TOKEN, "api_keys": [
        {"name": "ci", "max_token_age_days": -5, "state": "rotated"}]}])
    assert errors == [
        "team_api_keys_teams[0].api_keys[0] (key 'ci' in team 'prod'): max_token_age_days must be a whole number "
        "of days (0 or more), got -5.",
        "team_api_keys_teams[0].api_keys[0] (key 'ci' in team 'prod'): state must be one of present, absent, "
        "regenerated, got 'rotated'.",
    ]


# --------------------------------------------------------------------------- api_key_summary: audit


def dated(key, created_days, last_used_days=None):
    return dict(key, created_at=ago(days=created_days),
                last_used_at=None if last_used_days is None else ago(days=last_used_days))


def before_run():
    """ci is restricted and used; old is never used and unrestricted; admin is the auth token's key."""
    return [
        dated(team_key("tok_ci", "ci", allowed_ips=["10.0.0.0/24"]), 400, 1),
        dated(team_key("tok_old", "old"), 400),
        dated(team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE), 400, 0),
    ]


ISSUED = {"tok_ci": ago(days=200), "tok_admin": ago(days=10)}
BASELINE = [
    {"id": "tok_ci", "name": "ci", "findings": ["token_too_old"]},
    {"id": "tok_old", "name": "old", "findings": ["never_used", "unrestricted_write"]},
    {"id": "tok_admin", "name": "admin", "findings": ["unrestricted_write"]},
]


def audited(converged=None, purged=None, plan=None, **options):
    settings = dict(team_keys=before_run(), token_issued_at=ISSUED, audit=True, now=NOW_TEXT, max_token_age_days=90)
    settings.update(options)
    return api_key_summary(plan or {}, converged or registered(), purged or registered(), **settings)


def test_summary_audits_the_keys_as_read_when_nothing_ran():
    summary = audited()
    assert summary["findings"] == BASELINE
    assert summary["gate"] == []


def test_summary_drops_a_key_the_run_deleted_by_name():
    summary = audited(registered(outcome("old", ["delete"], api_key={})))
    assert summary["deleted"] == ["old"]
    assert summary["findings"] == [BASELINE[0], BASELINE[2]]


def test_summary_drops_a_purged_key_by_id_and_with_it_a_duplicate_name():
    keys = before_run() + [dated(team_key("tok_old2", "old", allowed_ips=["10.0.0.1"]), 10, 1)]
    assert audited(team_keys=keys)["findings"][1:] == [
        {"id": "tok_old", "name": "old", "findings": ["never_used", "unrestricted_write", "duplicate_name"]},
        BASELINE[2],
        {"id": "tok_old2", "name": "old", "findings": ["duplicate_name"]},
    ]
    # The purge deletes by id: the second key of that name goes, the first one stays.
    purged = registered({"item": {"id": "tok_old2", "name": "old", "token_path": None}, "actions": ["delete"],
                         "api_key": {}, "changed": True})
    summary = audited(purged=purged, team_keys=keys)
    assert summary["findings"] == BASELINE


def test_summary_a_rotated_key_has_a_fresh_token():
    rotated = dict(before_run()[0], token_last_slice="f00d1")
    summary = audited(registered(outcome("ci", ["rotate"], api_key=rotated)))
    assert summary["rotated"] == ["ci"]
    assert summary["findings"] == BASELINE[1:]


def test_summary_a_check_mode_rotation_has_a_fresh_token():
    predicted = dict(before_run()[0], token_last_slice=None)
    summary = audited(registered(outcome("ci", ["update", "rotate"], api_key=predicted)), check_mode=True)
    assert summary["findings"] == BASELINE[1:]


def test_summary_a_settings_change_is_applied_but_keeps_the_token_age():
    restricted = dict(before_run()[1], allowed_ips=["192.0.2.0/24"])
    old_ci = dict(before_run()[0], read_only=True)
    summary = audited(registered(outcome("old", ["update"], api_key=restricted),
                                 outcome("ci", ["update"], api_key=old_ci)))
    assert summary["findings"] == [
        BASELINE[0],
        {"id": "tok_old", "name": "old", "findings": ["never_used"]},
        BASELINE[2],
    ]


def test_summary_a_created_key_limited_to_a_network_has_no_finding():
    created = dict(team_key("tok_new", "fresh", allowed_ips=["10.1.0.0/16"]), created_at=NOW_TEXT)
    summary = audited(registered(outcome("fresh", ["create"], api_key=created)))
    assert summary["created"] == ["fresh"]
    assert summary["findings"] == BASELINE


def test_summary_a_created_read_only_key_has_no_finding():
    created = team_key("tok_new", "reader", read_only=True)  # no created_at: counted from now
    summary = audited(registered(outcome("reader", ["create"], api_key=created)), unused_days=0)
    assert "reader" not in [entry["name"] for entry in summary["findings"]]


def test_summary_a_created_writable_key_without_allowed_ips_is_unrestricted_write():
    created = dict(team_key("tok_new", "bare"), created_at=NOW_TEXT)
    summary = audited(registered(outcome("bare", ["create"], api_key=created)), fail_on=["unrestricted_write"])
    assert summary["findings"] == BASELINE + [{"id": "tok_new", "name": "bare", "findings": ["unrestricted_write"]}]
    assert summary["gate"] == [
        "key 'old' (tok_old): unrestricted_write",
        "key 'admin' (tok_admin): unrestricted_write",
        "key 'bare' (tok_new): unrestricted_write",
    ]


def test_summary_a_check_mode_create_has_no_id_yet():
    predicted = team_key(None, "bare")  # the module's plan.after: id and created_at None
    assert predicted["id"] is None and predicted["created_at"] is None
    summary = audited(registered(outcome("bare", ["create"], api_key=predicted)), check_mode=True,
                      fail_on=["unrestricted_write", "never_used", "token_too_old"])
    assert summary["created"] == ["bare"]
    assert summary["findings"][-1] == {"id": "(new) bare", "name": "bare", "findings": ["unrestricted_write"]}
    assert summary["gate"][-1] == "key 'bare' ((new) bare): unrestricted_write"
    assert "prediction" in summary["note"]


def test_summary_failed_and_skipped_results_change_nothing():
    rotated = dict(before_run()[0], token_last_slice="f00d1")
    converged = registered(
        outcome("ci", ["rotate"], api_key=rotated, failed=True, msg="rotation refused"),
        outcome("old", ["delete"], api_key={}, skipped=True),
        outcome("bare", ["create"], api_key=dict(team_key("tok_new", "bare")), failed=True),
    )
    purged = registered({"item": {"id": "tok_admin", "name": "admin"}, "skipped": True, "actions": ["delete"]})
    summary = audited(converged, purged)
    assert summary["failed"] == ["ci", "bare"]
    assert summary["findings"] == BASELINE


def test_summary_results_without_an_api_key_change_nothing():
    summary = audited(registered(outcome("ci", []), {"item": {"name": "old"}, "changed": False}))
    assert summary["findings"] == BASELINE


def test_summary_audit_counts_unused_days_and_the_role_wide_maximum():
    assert audited(unused_days=500, max_token_age_days=None)["findings"] == [
        {"id": "tok_old", "name": "old", "findings": ["unrestricted_write"]},
        BASELINE[2],
    ]
    assert audited(max_token_age_days=5)["findings"] == [
        BASELINE[0], BASELINE[1], {"id": "tok_admin", "name": "admin", "findings": ["unrestricted_write", "token_too_old"]},
    ]


def test_summary_copies_too_old_and_unknown_from_the_plan():
    plan = aged_plan({"tok_c": ago(days=100)}, keys=[team_key("tok_c", "ci"), team_key("tok_u", "u")],
                     declared=[{"name": "ci"}, {"name": "u"}])
    summary = api_key_summary(plan, registered(outcome("ci", ["rotate"])), registered())
    assert summary["too_old"] == [too_old("ci", 100, 90)]
    assert summary["token_age_unknown"] == ["u"]
    assert summary["rotated"] == ["ci"]


def test_summary_too_old_says_not_rotated_when_the_rotation_failed_or_did_not_run():
    plan = aged_plan({"tok_c": ago(days=100), "tok_d": ago(days=120)},
                     keys=[team_key("tok_c", "ci"), team_key("tok_d", "deploy")],
                     declared=[{"name": "ci"}, {"name": "deploy"}])
    converged = registered(outcome("ci", ["rotate"], failed=True, msg="rotation refused"))  # deploy: never ran
    summary = api_key_summary(plan, converged, registered())
    assert summary["too_old"] == [too_old("ci", 100, 90, rotated=False), too_old("deploy", 120, 90, rotated=False)]
    assert summary["failed"] == ["ci"] and summary["rotated"] == []


# --------------------------------------------------------------------------- api_key_summary: gate and switches


def test_summary_gate_lists_only_the_findings_named_in_fail_on():
    assert audited(fail_on=["never_used"])["gate"] == ["key 'old' (tok_old): never_used"]
    assert audited(fail_on=["token_too_old", "never_used", "unrestricted_write"])["gate"] == [
        "key 'ci' (tok_ci): token_too_old",
        "key 'old' (tok_old): never_used, unrestricted_write",
        "key 'admin' (tok_admin): unrestricted_write",
    ]
    assert audited(fail_on=["unused", "duplicate_name"])["gate"] == []
    assert audited(fail_on=None)["gate"] == []


def test_summary_gate_is_empty_once_the_run_fixed_the_finding():
    rotated = dict(before_run()[0], token_last_slice="f00d1")
    summary = audited(registered(outcome("ci", ["rotate"], api_key=rotated)), fail_on=["token_too_old"])
    assert summary["gate"] == []


def test_summary_unknown_fail_on_names_the_valid_findings():
    with pytest.raises(AnsibleFilterError) as raised:
        audited(fail_on=["never_used", "stale", "expired"])
    assert str(raised.value) == (
        "api_key_summary: fail_on names unknown findings stale, expired; the findings are never_used, unused, "
        "unrestricted_write, duplicate_name, token_too_old.")


def test_summary_without_audit_has_no_findings_or_gate():
    summary = audited(audit=False, now="not a time")
    assert "findings" not in summary and "gate" not in summary
    assert summary["too_old"] == [] and summary["token_age_unknown"] == []


@pytest.mark.parametrize("now", ["yesterday", 17])
def test_summary_bad_now_is_an_error_naming_it(now):
    with pytest.raises(AnsibleFilterError) as raised:
        audited(now=now)
    assert str(raised.value) == (
        "api_key_summary: now must be an ISO 8601 date and time such as 2026-01-14T15:56:29+00:00, got %r." % (now,))


# --------------------------------------------------------------------------- plan and summary together


def run_plan_and_summary(keys, declared, issued, role_wide, fail_on):
    plan = api_key_plan(keys, declared, auth_token=AUTH_TOKEN, max_token_age_days=role_wide, token_issued_at=issued,
                        now=NOW_TEXT)
    results = registered(*[outcome(item["name"], ["rotate"], api_key=dict(
        next(key for key in keys if key["name"] == item["name"]), token_last_slice="f00d1"))
        for item in plan["converge"]])
    return plan, api_key_summary(plan, results, registered(), team_keys=keys, token_issued_at=issued, audit=True,
                                 now=NOW_TEXT, max_token_age_days=role_wide, fail_on=fail_on)


def test_summary_findings_honour_a_keys_laxer_own_maximum():
    """break-glass may keep its token 365 days: at 120 days the plan leaves it alone, so the audit of the
    keys as the run left them must not call it token_too_old (and a token_too_old gate must not fail)."""
    keys = [dated(team_key("tok_bg", "break-glass", allowed_ips=["10.0.0.1"]), 400, 1)]
    plan, summary = run_plan_and_summary(keys, [{"name": "break-glass", "max_token_age_days": 365}],
                                         {"tok_bg": ago(days=120)}, 90, ["token_too_old"])
    assert plan["too_old"] == [] and plan["converge"] == []
    assert summary["findings"] == []
    assert summary["gate"] == []


def test_summary_findings_honour_a_keys_stricter_own_maximum():
    """The admin token's key (never rotated by the role) is 60 days old, over its own 30: the plan lists it
    too old and not rotated, so it remains token_too_old after the run and a token_too_old gate fails."""
    keys = [dated(team_key("tok_admin", "admin", allowed_ips=["10.0.0.1"], token_last_slice=IN_USE_SLICE), 400, 0)]
    plan, summary = run_plan_and_summary(keys, [{"name": "admin", "max_token_age_days": 30}],
                                         {"tok_admin": ago(days=60)}, None, ["token_too_old"])
    assert plan["too_old"] == [too_old("admin", 60, 30, rotated=False)]
    assert summary["findings"] == [{"id": "tok_admin", "name": "admin", "findings": ["token_too_old"]}]
    assert summary["gate"] == ["key 'admin' (tok_admin): token_too_old"]
