# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sandbox's timestamps: last_used_at, created_at and updated_at on each operation, the
sandbox clock (/_sandbox/clock) and seeded key times (/_sandbox/key_times), over 127.0.0.1."""

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest

from latitude_sandbox import ControlError

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
DAY = 86400


def parse(stamp):
    return datetime.fromisoformat(stamp)


def api(sandbox, method, path, token, body=None):
    """One API request; returns (status, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(sandbox.url + path, data=data, method=method, headers={
        "Authorization": token, "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def doc(attributes=None, key_id=None):
    data = {"type": "api_keys", "attributes": attributes or {}}
    if key_id:
        data["id"] = key_id
    return {"data": data}


@pytest.fixture
def admin(control):
    return control.admin_token("platform")


def listed(sandbox, token, key_id):
    status, body = api(sandbox, "GET", "/auth/api_keys", token)
    assert status == 200
    return next(item["attributes"] for item in body["data"] if item["id"] == key_id)


def create(sandbox, token, **attributes):
    status, body = api(sandbox, "POST", "/auth/api_keys", token, doc(attributes))
    assert status == 201, body
    return body["data"]


def seconds_between(later, earlier):
    return (parse(later) - parse(earlier)).total_seconds()


# -- the clock ------------------------------------------------------------------------------

def test_clock_starts_at_real_time(control):
    clock = control.clock()
    assert clock["offset_seconds"] == 0
    assert TIMESTAMP.match(clock["now"])
    assert abs((parse(clock["now"]) - datetime.now(timezone.utc)).total_seconds()) < 5


def test_shift_days_moves_new_timestamps(sandbox, control, admin):
    before = create(sandbox, admin, name="before")["attributes"]["created_at"]
    clock = control.set_clock(shift_days=100)
    assert clock["offset_seconds"] == 100 * DAY
    after = create(sandbox, admin, name="after")["attributes"]
    assert 100 * DAY - 5 < seconds_between(after["created_at"], before) < 100 * DAY + 5
    assert after["updated_at"] == after["created_at"]
    control.set_clock(shift_seconds=-3600)
    assert control.clock()["offset_seconds"] == 100 * DAY - 3600


def test_set_clock_to_a_time_and_back(sandbox, control, admin):
    clock = control.set_clock(now="2030-01-01T00:00:00Z")
    assert abs(seconds_between(clock["now"], "2030-01-01T00:00:00+00:00")) < 5
    key = create(sandbox, admin, name="future")
    assert key["attributes"]["created_at"].startswith("2030-01-01T00:00")
    assert control.set_clock(offset_seconds=0)["offset_seconds"] == 0
    assert abs((parse(control.clock()["now"]) - datetime.now(timezone.utc)).total_seconds()) < 5


def test_reset_puts_the_clock_back(control):
    control.set_clock(shift_days=-30)
    control.reset()
    assert control.clock()["offset_seconds"] == 0


@pytest.mark.parametrize("change", [{}, {"shift_days": 1, "shift_seconds": 1}, {"shift_days": "1"},
                                    {"shift_days": True}, {"now": "tomorrow"}, {"later": 1}])
def test_bad_clock_changes_are_400(control, change):
    with pytest.raises(ControlError) as caught:
        control.set_clock(**change)
    assert caught.value.status == 400
    assert control.clock()["offset_seconds"] == 0


# -- last_used_at ------------------------------------------------------------------------------

def test_use_sets_last_used_at_on_the_sandbox_clock(sandbox, control, admin):
    key = create(sandbox, admin, name="user")
    assert key["attributes"]["last_used_at"] is None
    control.set_clock(shift_days=10)
    assert api(sandbox, "GET", "/auth/api_keys", key["attributes"]["token"])[0] == 200
    attributes = listed(sandbox, admin, key["id"])
    assert 10 * DAY - 5 < seconds_between(attributes["last_used_at"], key["attributes"]["created_at"]) < 10 * DAY + 5


def test_a_refused_token_does_not_count_as_use(sandbox, control, admin):
    key = create(sandbox, admin, name="far", allowed_ips=["192.0.2.0/24"])
    assert api(sandbox, "GET", "/auth/api_keys", key["attributes"]["token"])[0] == 403
    assert listed(sandbox, admin, key["id"])["last_used_at"] is None


def test_admin_key_use_is_recorded(sandbox, control, admin):
    admin_id = next(key["id"] for key in control.state()["teams"][0]["keys"] if key["name"] == "admin")
    assert TIMESTAMP.match(listed(sandbox, admin, admin_id)["last_used_at"])


# -- PATCH and PUT ------------------------------------------------------------------------------

def test_patch_moves_updated_at_but_keeps_the_token(sandbox, control, admin):
    key = create(sandbox, admin, name="ci")
    token, created = key["attributes"]["token"], key["attributes"]["created_at"]
    control.set_clock(shift_days=3)
    status, body = api(sandbox, "PATCH", "/auth/api_keys/" + key["id"], admin, doc({"read_only": True}))
    assert status == 200
    attributes = body["data"]["attributes"]
    assert "token" not in attributes
    assert attributes["token_last_slice"] == token[-5:]
    assert attributes["created_at"] == created
    assert 3 * DAY - 5 < seconds_between(attributes["updated_at"], created) < 3 * DAY + 5
    assert api(sandbox, "GET", "/auth/api_keys", token)[0] == 200
    assert control.state()["teams"][0]["keys"][-1]["token"] == token


def test_put_issues_a_fresh_token_and_moves_only_updated_at(sandbox, control, admin):
    key = create(sandbox, admin, name="ci")
    old, created = key["attributes"]["token"], key["attributes"]["created_at"]
    control.set_clock(shift_days=5)
    status, body = api(sandbox, "PUT", "/auth/api_keys/" + key["id"], admin, doc(key_id=key["id"]))
    assert status == 200
    attributes = body["data"]["attributes"]
    assert attributes["token"] != old and attributes["token_last_slice"] == attributes["token"][-5:]
    assert attributes["created_at"] == created
    assert 5 * DAY - 5 < seconds_between(attributes["updated_at"], created) < 5 * DAY + 5
    assert api(sandbox, "GET", "/auth/api_keys", old)[0] == 401


# -- seeded key times ------------------------------------------------------------------------------

def test_key_times_by_team_and_name(sandbox, control, admin):
    result = control.key_times(team="platform", name="ci-deployer", created_at="2026-01-14T15:56:29Z",
                               updated_at="2026-02-01T10:00:00", last_used_at="2026-03-01T12:00:00+02:00")
    assert result == {"id": result["id"], "team": "platform", "name": "ci-deployer",
                      "created_at": "2026-01-14T15:56:29+00:00", "updated_at": "2026-02-01T10:00:00+00:00",
                      "last_used_at": "2026-03-01T10:00:00+00:00"}
    assert "token" not in result
    attributes = listed(sandbox, admin, result["id"])
    assert (attributes["created_at"], attributes["updated_at"], attributes["last_used_at"]) == (
        "2026-01-14T15:56:29+00:00", "2026-02-01T10:00:00+00:00", "2026-03-01T10:00:00+00:00")


def test_key_times_by_id_relative_and_null(sandbox, control, admin):
    key = create(sandbox, admin, name="rel")
    api(sandbox, "GET", "/auth/api_keys", key["attributes"]["token"])
    control.set_clock(shift_days=-50)
    result = control.key_times(key["id"], created_at={"days_ago": 200}, last_used_at=None)
    clock = control.clock()["now"]
    assert 200 * DAY - 5 < seconds_between(clock, result["created_at"]) < 200 * DAY + 5
    assert result["last_used_at"] is None
    assert result["updated_at"] == key["attributes"]["updated_at"]  # not given: unchanged
    assert listed(sandbox, admin, key["id"])["last_used_at"] is None  # the admin's list is a use of the admin key only


@pytest.mark.parametrize("payload, status", [
    ({"id": "tok_nope", "created_at": "2026-01-01T00:00:00Z"}, 404),
    ({"team": "nope", "name": "ci-deployer", "created_at": "2026-01-01T00:00:00Z"}, 404),
    ({"team": "platform", "name": "nope", "created_at": "2026-01-01T00:00:00Z"}, 404),
    ({"team": "platform", "name": "ci-deployer"}, 400),
    ({"team": "platform", "name": "ci-deployer", "created_at": None}, 400),
    ({"team": "platform", "name": "ci-deployer", "created_at": "soon"}, 400),
    ({"team": "platform", "name": "ci-deployer", "last_used_at": {"days_ago": "x"}}, 400),
    ({"team": "platform", "name": "ci-deployer", "token": "abc"}, 400),
    ({"id": ["tok_x"], "created_at": "2026-01-01T00:00:00Z"}, 400),
])
def test_bad_key_times_are_refused_and_change_nothing(control, payload, status):
    before = control.state()
    with pytest.raises(ControlError) as caught:
        control._call("POST", "/_sandbox/key_times", payload)  # pylint: disable=protected-access
    assert caught.value.status == status
    assert control.state() == before


def test_key_times_with_a_duplicate_name_is_409(sandbox, control, admin):
    create(sandbox, admin, name="ci-deployer")
    with pytest.raises(ControlError) as caught:
        control.key_times(team="platform", name="ci-deployer", created_at="2026-01-01T00:00:00Z")
    assert caught.value.status == 409
    assert "give id instead" in str(caught.value)


def test_key_times_are_not_in_the_request_log(control):
    control.clear_log()
    control.key_times(team="platform", name="monitoring", last_used_at={"days_ago": 1})
    control.set_clock(shift_days=1)
    assert control.log() == []


def test_ages_without_waiting(sandbox, control, admin):
    """A key used once, then left alone for 120 days of sandbox clock."""
    key = create(sandbox, admin, name="stale")
    api(sandbox, "GET", "/auth/api_keys", key["attributes"]["token"])
    used = listed(sandbox, admin, key["id"])["last_used_at"]
    control.set_clock(shift_days=120)
    attributes = listed(sandbox, admin, key["id"])
    assert attributes["last_used_at"] == used
    assert 120 * DAY - 5 < seconds_between(control.clock()["now"], used) < 120 * DAY + 5
