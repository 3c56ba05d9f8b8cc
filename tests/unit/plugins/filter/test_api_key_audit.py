# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the api_key_audit and api_key_token_ages filters."""

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.latitudesh.cloud.plugins.filter.api_key_audit import (
    FilterModule,
    api_key_audit,
    api_key_token_ages,
)
from ansible_collections.latitudesh.cloud.tests.unit.plugins.filter.test_api_keys import team_key as shared_team_key

NOW = "2026-12-06T12:00:00+00:00"
NOW_DT = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def at(delta):
    """NOW minus ``delta``, in the API's ``+00:00`` form."""
    return (NOW_DT - delta).isoformat()


def team_key(key_id="tok_a1", name="ci", read_only=False, allowed_ips=("10.0.0.0/24",),
             created_at=None, last_used_at=None, token_last_slice="9c3d1"):
    """The planning tests' key, limited to a network and created 10 days before NOW unless told otherwise."""
    created_at = created_at if created_at is not None else at(10 * DAY)
    return shared_team_key(key_id, name, read_only=read_only, token_last_slice=token_last_slice,
                           allowed_ips=list(allowed_ips) if allowed_ips is not None else None,
                           created_at=created_at, updated_at=created_at, last_used_at=last_used_at)


def audit_one(key, **options):
    options.setdefault("now", NOW)
    (entry,) = api_key_audit([key], **options)
    return entry


def findings(key, **options):
    return audit_one(key, **options)["findings"]


# --------------------------------------------------------------------------- shape


def test_registered_under_its_name():
    assert FilterModule().filters() == {"api_key_audit": api_key_audit, "api_key_token_ages": api_key_token_ages}


def test_clean_key_entry():
    key = team_key(created_at=at(40 * DAY + 5 * 3600 * SECOND), last_used_at=at(3 * DAY + 60 * SECOND))
    assert audit_one(key) == {
        "id": "tok_a1",
        "name": "ci",
        "read_only": False,
        "allowed_ips": ["10.0.0.0/24"],
        "created_at": at(40 * DAY + 5 * 3600 * SECOND),
        "last_used_at": at(3 * DAY + 60 * SECOND),
        "token_issued_at": None,
        "age_days": 40,
        "idle_days": 3,
        "token_age_days": None,
        "findings": [],
    }


def test_empty_list():
    assert api_key_audit([], now=NOW) == []


def test_one_entry_per_key_in_input_order():
    keys = [team_key("tok_c", "c"), team_key("tok_a", "a"), team_key("tok_b", "b")]
    assert [entry["id"] for entry in api_key_audit(keys, now=NOW)] == ["tok_c", "tok_a", "tok_b"]


# --------------------------------------------------------------------------- never_used / unused


def test_never_used_key_idle_since_creation():
    entry = audit_one(team_key(created_at=at(120 * DAY)))
    assert (entry["age_days"], entry["idle_days"], entry["last_used_at"]) == (120, 120, None)
    assert entry["findings"] == ["never_used"]


def test_never_used_but_young_key_is_fine():
    assert findings(team_key(created_at=at(30 * DAY))) == []


def test_unused_key():
    entry = audit_one(team_key(created_at=at(400 * DAY), last_used_at=at(91 * DAY)))
    assert (entry["age_days"], entry["idle_days"]) == (400, 91)
    assert entry["findings"] == ["unused"]


def test_recently_used_old_key_is_fine():
    assert findings(team_key(created_at=at(400 * DAY), last_used_at=at(DAY))) == []


@pytest.mark.parametrize("idle, expected", [
    (90 * DAY - SECOND, []),
    (90 * DAY, []),
    (90 * DAY + SECOND, ["unused"]),
])
def test_unused_boundary_is_more_than_n_times_86400_seconds(idle, expected):
    key = team_key(created_at=at(200 * DAY), last_used_at=at(idle))
    assert findings(key) == expected


@pytest.mark.parametrize("age, expected", [
    (90 * DAY, []),
    (90 * DAY + SECOND, ["never_used"]),
])
def test_never_used_boundary(age, expected):
    assert findings(team_key(created_at=at(age))) == expected


def test_day_figures_round_down():
    entry = audit_one(team_key(created_at=at(90 * DAY + 3600 * SECOND), last_used_at=at(DAY - SECOND)))
    assert (entry["age_days"], entry["idle_days"]) == (90, 0)


@pytest.mark.parametrize("unused_days, expected", [(0, ["unused"]), (29, ["unused"]), (30, []), ("30", []), ("29", ["unused"])])
def test_unused_days_option(unused_days, expected):
    key = team_key(created_at=at(100 * DAY), last_used_at=at(30 * DAY))
    assert findings(key, unused_days=unused_days) == expected


def test_future_timestamps_count_as_zero():
    entry = audit_one(team_key(created_at=at(-2 * DAY), last_used_at=at(-DAY)))
    assert (entry["age_days"], entry["idle_days"], entry["findings"]) == (0, 0, [])


# --------------------------------------------------------------------------- unrestricted_write


@pytest.mark.parametrize("read_only, allowed_ips, expected", [
    (False, [], ["unrestricted_write"]),
    (False, None, ["unrestricted_write"]),
    (False, ["192.0.2.10"], []),
    (True, [], []),
    (True, ["10.0.0.0/8"], []),
])
def test_unrestricted_write(read_only, allowed_ips, expected):
    assert findings(team_key(read_only=read_only, allowed_ips=allowed_ips)) == expected


def test_missing_read_only_and_allowed_ips_mean_unrestricted():
    key = {"id": "tok_raw", "name": "raw", "created_at": at(DAY)}
    entry = audit_one(key)
    assert (entry["read_only"], entry["allowed_ips"], entry["findings"]) == (False, [], ["unrestricted_write"])


# --------------------------------------------------------------------------- duplicate_name


def test_duplicate_name_marks_every_key_of_that_name():
    keys = [team_key("tok_1", "ci"), team_key("tok_2", "web"), team_key("tok_3", "ci")]
    assert [entry["findings"] for entry in api_key_audit(keys, now=NOW)] == [["duplicate_name"], [], ["duplicate_name"]]


def test_names_are_compared_exactly():
    keys = [team_key("tok_1", "ci"), team_key("tok_2", "CI"), team_key("tok_3", "ci ")]
    assert [entry["findings"] for entry in api_key_audit(keys, now=NOW)] == [[], [], []]


# --------------------------------------------------------------------------- token_too_old


def test_token_too_old():
    entry = audit_one(team_key(), max_token_age_days=90, token_issued_at={"tok_a1": at(91 * DAY)})
    assert (entry["token_age_days"], entry["token_issued_at"]) == (91, at(91 * DAY))
    assert entry["findings"] == ["token_too_old"]


@pytest.mark.parametrize("token_age, expected", [
    (90 * DAY, []),
    (90 * DAY + SECOND, ["token_too_old"]),
])
def test_token_too_old_boundary(token_age, expected):
    assert findings(team_key(), max_token_age_days=90, token_issued_at={"tok_a1": at(token_age)}) == expected


def test_token_age_without_limit_is_reported_but_not_a_finding():
    entry = audit_one(team_key(), token_issued_at={"tok_a1": at(500 * DAY)})
    assert (entry["token_age_days"], entry["findings"]) == (500, [])


def test_unknown_token_age_is_never_too_old():
    key = team_key(created_at=at(900 * DAY), last_used_at=at(DAY))
    entry = audit_one(key, max_token_age_days=1, token_issued_at={"tok_other": at(500 * DAY)})
    assert (entry["token_age_days"], entry["findings"]) == (None, [])


def test_token_issued_at_null_entry_is_unknown():
    entry = audit_one(team_key(), max_token_age_days=1, token_issued_at={"tok_a1": None})
    assert (entry["token_age_days"], entry["findings"]) == (None, [])


# --------------------------------------------------------------------------- all findings, order


def test_all_findings_in_stable_order():
    keys = [
        team_key("tok_1", "dup", allowed_ips=[], created_at=at(300 * DAY)),
        team_key("tok_2", "dup", allowed_ips=[], created_at=at(300 * DAY), last_used_at=at(200 * DAY)),
    ]
    report = api_key_audit(keys, now=NOW, max_token_age_days=30,
                           token_issued_at={"tok_1": at(100 * DAY), "tok_2": at(100 * DAY)})
    assert report[0]["findings"] == ["never_used", "unrestricted_write", "duplicate_name", "token_too_old"]
    assert report[1]["findings"] == ["unused", "unrestricted_write", "duplicate_name", "token_too_old"]


# --------------------------------------------------------------------------- timestamps and now


@pytest.mark.parametrize("created_at", [
    "2026-09-07T12:00:00+00:00",
    "2026-09-07T12:00:00Z",
    "2026-09-07T12:00:00.000000Z",
    "2026-09-07T12:00:00",
    "2026-09-07T14:00:00+02:00",
    "2026-09-07T07:00:00-05:00",
])
def test_timestamp_forms_are_the_same_instant(created_at):
    entry = audit_one(team_key(created_at=created_at))
    assert (entry["created_at"], entry["age_days"]) == ("2026-09-07T12:00:00+00:00", 90)
    assert entry["findings"] == []  # exactly 90 days: not older than 90


@pytest.mark.parametrize("now", [NOW, "2026-12-06T12:00:00Z", "2026-12-06T12:00:00", NOW_DT,
                                 datetime(2026, 12, 6, 12, 0, 0), "2026-12-06T13:00:00+01:00"])
def test_now_forms(now):
    key = team_key(created_at=at(90 * DAY), last_used_at=at(90 * DAY + SECOND))
    assert findings(key, now=now) == ["unused"]


def test_now_defaults_to_the_current_time():
    recent = (datetime.now(timezone.utc) - 89 * DAY).isoformat()
    old = (datetime.now(timezone.utc) - 91 * DAY).isoformat()
    report = api_key_audit([team_key("tok_1", "a", created_at=recent), team_key("tok_2", "b", created_at=old)])
    assert [entry["findings"] for entry in report] == [[], ["never_used"]]
    assert [entry["age_days"] for entry in report] == [89, 91]


def test_missing_created_at_leaves_ages_unknown():
    key = {"id": "tok_x", "name": "x", "read_only": True, "created_at": None, "last_used_at": None}
    entry = audit_one(key)
    assert (entry["age_days"], entry["idle_days"], entry["findings"]) == (None, None, [])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("value", [None, {"id": "tok_1"}, "keys"])
def test_input_not_a_list(value):
    with pytest.raises(AnsibleFilterError, match=r"api_key_audit: its input must be the api_keys list"):
        api_key_audit(value, now=NOW)


@pytest.mark.parametrize("key", ["tok_1", {"name": "x"}, {"id": ""}, {"id": 7}])
def test_key_without_id(key):
    with pytest.raises(AnsibleFilterError, match=r"api_key_audit: api_keys\[1\] must be a key"):
        api_key_audit([team_key(), key], now=NOW)


@pytest.mark.parametrize("option", ["unused_days", "max_token_age_days"])
@pytest.mark.parametrize("value", [-1, "-1", "ninety", 1.5, True, [90]])
def test_bad_day_options_name_the_option(option, value):
    with pytest.raises(AnsibleFilterError, match=r"api_key_audit: %s must be a whole number of days" % option):
        api_key_audit([team_key()], now=NOW, **{option: value})


def test_unused_days_may_not_be_null():
    with pytest.raises(AnsibleFilterError, match=r"unused_days must be a whole number of days \(0 or more\), got None"):
        api_key_audit([team_key()], now=NOW, unused_days=None)


@pytest.mark.parametrize("now", ["yesterday", "", 1765000000, "2026-13-01T00:00:00+00:00"])
def test_bad_now(now):
    with pytest.raises(AnsibleFilterError, match=r"api_key_audit: now must be an ISO 8601 date and time"):
        api_key_audit([team_key()], now=now)


def test_bad_created_at_names_the_key():
    with pytest.raises(AnsibleFilterError, match=r"api_keys\[1\] \(tok_b\)\.created_at must be an ISO 8601"):
        api_key_audit([team_key(), team_key("tok_b", created_at="last tuesday")], now=NOW)


def test_bad_last_used_at_names_the_key():
    with pytest.raises(AnsibleFilterError, match=r"api_keys\[0\] \(tok_a1\)\.last_used_at must be an ISO 8601"):
        api_key_audit([team_key(last_used_at=12345)], now=NOW)


def test_token_issued_at_not_a_dict():
    with pytest.raises(AnsibleFilterError, match=r"token_issued_at must be a dict of key id"):
        api_key_audit([team_key()], now=NOW, token_issued_at=["tok_a1"])


def test_bad_token_issued_at_names_the_key():
    with pytest.raises(AnsibleFilterError, match=r"token_issued_at\['tok_a1'\] must be an ISO 8601"):
        api_key_audit([team_key()], now=NOW, token_issued_at={"tok_a1": "soon"})


# --------------------------------------------------------------------------- api_key_token_ages


def manifest(**tokens):
    return {"version": 1, "tokens": tokens}


def entry(key_id, token_last_slice, issued_at, name="ci"):
    return {"id": key_id, "name": name, "token_last_slice": token_last_slice, "issued_at": issued_at}


def test_token_ages_keeps_entries_whose_token_is_current():
    keys = [team_key("tok_1", "a", token_last_slice="aaaaa"), team_key("tok_2", "b", token_last_slice="bbbbb"),
            team_key("tok_3", "c", token_last_slice="ccccc")]
    result = api_key_token_ages(manifest(**{
        "a.token": entry("tok_1", "aaaaa", "2026-11-01T10:00:00+00:00"),
        "b.token": entry("tok_2", "zzzzz", "2026-11-01T10:00:00+00:00"),  # rotated elsewhere since
        "gone.token": entry("tok_9", "ccccc", "2026-11-01T10:00:00+00:00"),  # key deleted
        "c.token": entry("tok_3", "ccccc", "2026-11-02T10:00:00Z"),
    }), keys)
    assert result == {"tok_1": "2026-11-01T10:00:00+00:00", "tok_3": "2026-11-02T10:00:00+00:00"}


def test_token_ages_later_entry_wins_for_the_same_token():
    keys = [team_key("tok_1", token_last_slice="aaaaa")]
    result = api_key_token_ages(manifest(**{
        "old-name.token": entry("tok_1", "aaaaa", "2026-11-05T00:00:00+00:00"),
        "ci.token": entry("tok_1", "aaaaa", "2026-11-01T00:00:00+00:00"),
    }), keys)
    assert result == {"tok_1": "2026-11-05T00:00:00+00:00"}


@pytest.mark.parametrize("empty", [None, {}])
def test_token_ages_without_manifest(empty):
    assert api_key_token_ages(empty, [team_key()]) == {}


def test_token_ages_feed_the_audit():
    keys = [team_key("tok_1", token_last_slice="aaaaa")]
    ages = api_key_token_ages(manifest(**{"ci.token": entry("tok_1", "aaaaa", at(120 * DAY))}), keys)
    assert findings(keys[0], max_token_age_days=90, token_issued_at=ages) == ["token_too_old"]


@pytest.mark.parametrize("bad", [[], "x", {"version": 2, "tokens": {}}, {"tokens": {}}, {"version": 1, "tokens": []}])
def test_token_ages_bad_manifest(bad):
    with pytest.raises(AnsibleFilterError, match=r"api_key_token_ages: the manifest must be a dict with version 1"):
        api_key_token_ages(bad, [team_key()])


def test_token_ages_bad_entry():
    with pytest.raises(AnsibleFilterError, match=r"manifest tokens\['ci.token'\] must be a dict"):
        api_key_token_ages(manifest(**{"ci.token": "tok_1"}), [team_key()])


def test_token_ages_bad_issued_at_names_the_file():
    with pytest.raises(AnsibleFilterError, match=r"manifest tokens\['ci.token'\]\.issued_at must be an ISO 8601"):
        api_key_token_ages(manifest(**{"ci.token": entry("tok_a1", "9c3d1", None)}), [team_key()])


def test_token_ages_bad_keys():
    with pytest.raises(AnsibleFilterError, match=r"api_key_token_ages: its input must be the api_keys list"):
        api_key_token_ages(manifest(), None)


# --------------------------------------------------------------------------- purity


def test_importing_the_filter_does_not_import_requests():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = ("import sys; import ansible_collections.latitudesh.cloud.plugins.filter.api_key_audit; "
            "print('requests' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"
