# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the pure parts of the api_keys resource: normalise, find, compare and plan."""

import copy
import json

import pytest

from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import (
    NAME_MAX_LENGTH,
    Plan,
    PlanError,
    find_api_key,
    in_use,
    item_path,
    network_set,
    normalize_api_key,
    plan_api_key,
    resource_body,
    setting_changes,
    token_of,
    validate_spec,
)
from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import key_resource

AUTH_TOKEN = "5ec2e7a11ce0b0b5ec2e7a11ce0b0b0e1f2a"
SECRET = "54ebfcfa2ad7f9fe0d4e081306554174d063"


def resource(key_id="tok_x1ZJrdx5qg4LV", name="ci-deployer", read_only=False, allowed_ips=None,
             token_last_slice="4d063", **extra):
    doc = key_resource(key_id, name, read_only=read_only, allowed_ips=allowed_ips, token_last_slice=token_last_slice)
    doc["attributes"].update(extra)
    return doc


def key(**kwargs):
    return normalize_api_key(resource(**kwargs))


CI = dict(key_id="tok_ci0000000001", name="ci-deployer", allowed_ips=["10.20.0.0/24"])
MON = dict(key_id="tok_mon000000001", name="monitoring", read_only=True)
SELF = dict(key_id="tok_self00000001", name="ansible", token_last_slice=AUTH_TOKEN[-5:])


def keys():
    return [key(**CI), key(**MON), key(**SELF)]


def spec(**kwargs):
    base = dict(id=None, name=None, state="present", read_only=None, allowed_ips=None, force=False)
    base.update(kwargs)
    return base


# --------------------------------------------------------------------------- normalize


def test_normalize_full_resource():
    assert normalize_api_key(resource(allowed_ips=["10.0.0.0/24"], read_only=True)) == {
        "id": "tok_x1ZJrdx5qg4LV",
        "name": "ci-deployer",
        "read_only": True,
        "allowed_ips": ["10.0.0.0/24"],
        "token_last_slice": "4d063",
        "api_version": "2023-06-01",
        "last_used_at": None,
        "created_at": "2026-01-14T15:56:29+00:00",
        "updated_at": "2026-01-14T15:56:29+00:00",
        "user": {"id": "user_Wel4PnEAmauQYZz3Vz83CkyV2BW", "email": "ops@example.com"},
    }


def test_normalize_nulls_mean_not_restricted():
    normalized = normalize_api_key(resource(read_only=None, allowed_ips=None))
    assert normalized["read_only"] is False
    assert normalized["allowed_ips"] == []


def test_normalize_missing_attributes():
    normalized = normalize_api_key({"id": "tok_abc"})
    assert normalized["id"] == "tok_abc"
    assert normalized["read_only"] is False
    assert normalized["allowed_ips"] == []
    assert normalized["user"] == {"id": None, "email": None}
    assert normalized["name"] is None


@pytest.mark.parametrize("user", [None, {}])
def test_normalize_user_is_always_a_dict(user):
    normalized = normalize_api_key(resource(user=user))
    assert normalized["user"] == {"id": None, "email": None}


def test_normalize_user_keeps_only_id_and_email():
    normalized = normalize_api_key(resource(user={"id": "user_1", "email": "a@b.c", "role": "owner"}))
    assert normalized["user"] == {"id": "user_1", "email": "a@b.c"}


def test_normalize_never_holds_the_token():
    normalized = normalize_api_key(resource(token=SECRET))
    assert "token" not in normalized
    assert SECRET not in json.dumps(normalized)


def test_normalize_copies_allowed_ips():
    raw = resource(allowed_ips=["10.0.0.1"])
    normalized = normalize_api_key(raw)
    normalized["allowed_ips"].append("10.0.0.2")
    assert raw["attributes"]["allowed_ips"] == ["10.0.0.1"]


def test_token_of():
    assert token_of({"data": resource(token=SECRET)}) == SECRET
    assert token_of({"data": resource()}) is None
    assert token_of({}) is None
    assert token_of({"data": None}) is None
    assert token_of(None) is None


@pytest.mark.parametrize("attributes", ["x", 5, ["a"], {"name": "k", "user": "x", "allowed_ips": 5},
                                        {"name": "k", "user": ["x"], "allowed_ips": "10.0.0.1"}])
def test_normalize_an_answer_of_the_wrong_shape_is_not_a_crash(attributes):
    normalized = normalize_api_key({"id": "tok_abc", "attributes": attributes})
    assert normalized["id"] == "tok_abc"
    assert normalized["user"] == {"id": None, "email": None}
    assert normalized["allowed_ips"] == []


@pytest.mark.parametrize("doc", [{"data": []}, {"data": "x"}, {"data": {"attributes": "x"}},
                                 {"data": {"attributes": ["token"]}}, ["x"]])
def test_token_of_an_answer_of_the_wrong_shape_is_none(doc):
    assert token_of(doc) is None


def test_setting_changes_replaces_allowed_ips_the_api_holds_that_are_no_network():
    current = dict(key(**CI), allowed_ips=["not-a-network"])
    assert setting_changes(current, spec(allowed_ips=["10.0.0.1"])) == {"allowed_ips": ["10.0.0.1"]}


@pytest.mark.parametrize("key_id, path", [
    ("tok_x1ZJrdx5qg4LV", "/auth/api_keys/tok_x1ZJrdx5qg4LV"),
    ("../../x", "/auth/api_keys/..%2F..%2Fx"),
    ("tok_a/../../../admin", "/auth/api_keys/tok_a%2F..%2F..%2F..%2Fadmin"),
    ("tok_a?b=c", "/auth/api_keys/tok_a%3Fb%3Dc"),
    ("tok_a#f", "/auth/api_keys/tok_a%23f"),
    ("%2e%2e", "/auth/api_keys/%252e%252e"),
])
def test_item_path_keeps_an_id_from_the_api_in_one_path_segment(key_id, path):
    # An id is the API's, not the user's: whatever it holds, the request stays on /auth/api_keys/<one segment>.
    assert item_path(key_id) == path


@pytest.mark.parametrize("key_id", ["", ".", "..", None])
def test_an_id_that_cannot_name_one_key_is_refused(key_id):
    # Percent-quoting keeps "." and ".." as they are, and the client removes dot segments: a DELETE or PATCH
    # would go to /auth/api_keys/ or /auth/.
    with pytest.raises(PlanError) as info:
        item_path(key_id)
    assert "cannot name one key" in str(info.value) and "Nothing was sent" in str(info.value)


def test_resource_body():
    assert resource_body({"name": "x"}) == {"data": {"type": "api_keys", "attributes": {"name": "x"}}}
    assert resource_body({"name": "x"}, "tok_a") == {
        "data": {"type": "api_keys", "id": "tok_a", "attributes": {"name": "x"}}
    }


# --------------------------------------------------------------------------- network_set


@pytest.mark.parametrize("left, right", [
    (["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.1"]),
    (["10.0.0.1"], ["10.0.0.1/32"]),
    (["2001:db8::1"], ["2001:db8::1/128"]),
    (["2001:DB8::1"], ["2001:db8:0:0:0:0:0:1/128"]),
    ([" 10.0.0.0/24 "], ["10.0.0.0/24"]),
    (["10.0.0.0/24", "10.0.0.0/24"], ["10.0.0.0/24"]),
    ([], None),
    (None, []),
])
def test_network_set_equivalences(left, right):
    assert network_set(left) == network_set(right)


@pytest.mark.parametrize("left, right", [
    (["10.0.0.1"], ["10.0.0.2"]),
    (["10.0.0.0/24"], ["10.0.0.0/25"]),
    (["10.0.0.1"], []),
    (["2001:db8::1"], ["2001:db8::1/64"]),
])
def test_network_set_differences(left, right):
    assert network_set(left) != network_set(right)


def test_network_set_normal_form():
    assert network_set(["10.0.0.1", "2001:db8::1"]) == frozenset(["10.0.0.1/32", "2001:db8::1/128"])


# --------------------------------------------------------------------------- validate_spec


def test_validate_spec_accepts_good_input():
    assert validate_spec(spec(name="ci", allowed_ips=["10.0.0.1", "10.0.0.0/24", "2001:db8::/64"])) == []
    assert validate_spec(spec(id="tok_x1ZJrdx5qg4LV")) == []
    assert validate_spec(spec(name="x" * NAME_MAX_LENGTH)) == []


@pytest.mark.parametrize("kwargs, fragments", [
    (dict(name=""), ["name", "blank"]),
    (dict(name="   "), ["name", "blank"]),
    (dict(name="x" * (NAME_MAX_LENGTH + 1)), ["name", "256", "255"]),
    (dict(id="tok x"), ["id", "'tok x'", "tok_x1ZJrdx5qg4LV"]),
    (dict(id="12345"), ["id", "'12345'"]),
    (dict(id="tok_"), ["id", "'tok_'"]),
    (dict(id="tok_abc-def"), ["id"]),
    (dict(id="tok_abc\n"), ["id"]),
    (dict(id=""), ["id"]),
    (dict(name="ci", allowed_ips=["10.0.0.300"]), ["allowed_ips", "'10.0.0.300'"]),
    (dict(name="ci", allowed_ips=["10.0.0.0/33"]), ["allowed_ips", "'10.0.0.0/33'"]),
    (dict(name="ci", allowed_ips=["example.com"]), ["allowed_ips", "'example.com'"]),
    (dict(name="ci", allowed_ips=[""]), ["allowed_ips"]),
    (dict(name="ci", state="rotated"), ["state", "'rotated'", "present", "absent", "regenerated"]),
    (dict(), ["id", "name", "required"]),
])
def test_validate_spec_messages_name_the_option(kwargs, fragments):
    errors = validate_spec(spec(**kwargs))
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0]


def test_validate_spec_reports_every_problem():
    errors = validate_spec(spec(name=" ", id="bad id", allowed_ips=["nope", "10.0.0.1", "also-bad"], state="x"))
    assert len(errors) == 5
    assert "'nope'" in errors[2] and "'also-bad'" in errors[3]


# --------------------------------------------------------------------------- find_api_key


def test_find_by_id():
    assert find_api_key(keys(), key_id="tok_mon000000001")["name"] == "monitoring"


def test_find_by_id_ignores_name():
    assert find_api_key(keys(), key_id="tok_mon000000001", name="ci-deployer")["id"] == "tok_mon000000001"


def test_find_by_id_missing():
    assert find_api_key(keys(), key_id="tok_nothere00001", name="ci-deployer") is None


def test_find_by_name():
    assert find_api_key(keys(), name="ci-deployer")["id"] == "tok_ci0000000001"


def test_find_by_name_missing():
    assert find_api_key(keys(), name="nope") is None
    assert find_api_key([], name="nope") is None


def test_find_by_name_is_exact():
    assert find_api_key(keys(), name="CI-deployer") is None
    assert find_api_key(keys(), name="ci-deployer ") is None


def test_find_duplicates_lists_every_id_and_changes_nothing():
    dupes = keys() + [key(key_id="tok_ci0000000002", name="ci-deployer"),
                      key(key_id="tok_ci0000000003", name="ci-deployer")]
    with pytest.raises(PlanError) as info:
        find_api_key(dupes, name="ci-deployer")
    message = str(info.value)
    for key_id in ("tok_ci0000000001", "tok_ci0000000002", "tok_ci0000000003"):
        assert key_id in message
    assert "3 API keys" in message
    assert "nothing was changed" in message
    assert "id" in message


def test_find_duplicates_by_id_is_fine():
    dupes = keys() + [key(key_id="tok_ci0000000002", name="ci-deployer")]
    assert find_api_key(dupes, key_id="tok_ci0000000002")["id"] == "tok_ci0000000002"


# --------------------------------------------------------------------------- setting_changes


def test_setting_changes_nothing_given():
    assert setting_changes(key(**CI), spec(name="ci-deployer")) == {}


def test_setting_changes_only_given_options():
    current = key(**CI)
    assert setting_changes(current, spec(name="ci-deployer", read_only=True)) == {"read_only": True}
    assert setting_changes(current, spec(name="ci-deployer", allowed_ips=["10.9.0.0/16"])) == {
        "allowed_ips": ["10.9.0.0/16"]
    }


def test_setting_changes_same_values():
    current = key(**CI)
    assert setting_changes(current, spec(name="ci-deployer", read_only=False, allowed_ips=["10.20.0.0/24"])) == {}


def test_setting_changes_equivalent_networks():
    current = key(key_id="tok_a1", name="a", allowed_ips=["10.0.0.1/32", "2001:db8::1/128"])
    assert setting_changes(current, spec(name="a", allowed_ips=[" 2001:db8::1", "10.0.0.1"])) == {}


def test_setting_changes_sends_stripped_values():
    current = key(**CI)
    assert setting_changes(current, spec(name="ci-deployer", allowed_ips=[" 10.1.0.0/16 "])) == {
        "allowed_ips": ["10.1.0.0/16"]
    }


@pytest.mark.parametrize("api_value", [None, []])
def test_setting_changes_empty_list_equals_null(api_value):
    current = key(key_id="tok_a1", name="a", allowed_ips=api_value)
    assert setting_changes(current, spec(name="a", allowed_ips=[])) == {}


def test_setting_changes_clears_allowed_ips():
    assert setting_changes(key(**CI), spec(name="ci-deployer", allowed_ips=[])) == {"allowed_ips": []}


def test_setting_changes_read_only_null_is_false():
    current = key(key_id="tok_a1", name="a", read_only=None)
    assert setting_changes(current, spec(name="a", read_only=False)) == {}
    assert setting_changes(current, spec(name="a", read_only=True)) == {"read_only": True}


def test_setting_changes_rename_only_with_id():
    current = key(**CI)
    assert setting_changes(current, spec(id="tok_ci0000000001", name="renamed")) == {"name": "renamed"}
    assert setting_changes(current, spec(id="tok_ci0000000001", name="ci-deployer")) == {}
    assert setting_changes(current, spec(id="tok_ci0000000001")) == {}
    # Without id the name only identifies the key: it is never a change.
    assert setting_changes(current, spec(name="renamed")) == {}


# --------------------------------------------------------------------------- in_use


def test_in_use():
    assert in_use(key(**SELF), AUTH_TOKEN) is True
    assert in_use(key(**SELF), "  %s\n" % AUTH_TOKEN) is True
    assert in_use(key(**CI), AUTH_TOKEN) is False
    assert in_use(key(key_id="tok_a1", name="a", token_last_slice=None), AUTH_TOKEN) is False
    assert in_use(key(**SELF), None) is False


# --------------------------------------------------------------------------- plan_api_key


def test_plan_present_unchanged():
    plan = plan_api_key(keys(), spec(name="ci-deployer", allowed_ips=["10.20.0.0/24"], read_only=False), AUTH_TOKEN)
    assert plan.changed is False
    assert plan.actions == []
    assert plan.before == key(**CI)
    assert plan.after == key(**CI)


def test_plan_create_with_only_name():
    plan = plan_api_key(keys(), spec(name="new-key"), AUTH_TOKEN)
    assert plan.changed is True
    assert plan.actions == [("create", {"name": "new-key"})]
    assert plan.before is None
    assert plan.after["id"] is None
    assert plan.after["name"] == "new-key"
    assert plan.after["read_only"] is False
    assert plan.after["allowed_ips"] == []
    assert "token" not in plan.after


@pytest.mark.parametrize("given, attributes", [
    (dict(read_only=True), {"name": "new-key", "read_only": True}),
    (dict(read_only=False), {"name": "new-key", "read_only": False}),
    (dict(allowed_ips=[]), {"name": "new-key", "allowed_ips": []}),
    (dict(allowed_ips=[" 10.0.0.1 "]), {"name": "new-key", "allowed_ips": ["10.0.0.1"]}),
    (dict(read_only=True, allowed_ips=["10.0.0.0/24"]),
     {"name": "new-key", "read_only": True, "allowed_ips": ["10.0.0.0/24"]}),
])
def test_plan_create_sends_only_given_attributes(given, attributes):
    plan = plan_api_key(keys(), spec(name="new-key", **given), AUTH_TOKEN)
    assert plan.actions == [("create", attributes)]
    assert plan.after["read_only"] is bool(given.get("read_only"))
    assert plan.after["allowed_ips"] == attributes.get("allowed_ips", [])


def test_plan_update():
    plan = plan_api_key(keys(), spec(name="ci-deployer", read_only=True, allowed_ips=["10.20.0.0/24"]), AUTH_TOKEN)
    assert plan.actions == [("update", {"read_only": True})]
    assert plan.before == key(**CI)
    assert plan.after == dict(key(**CI), read_only=True)


def test_plan_update_does_not_touch_before():
    current = keys()
    snapshot = copy.deepcopy(current)
    plan = plan_api_key(current, spec(name="ci-deployer", read_only=True, allowed_ips=["10.0.0.9"]), AUTH_TOKEN)
    assert current == snapshot
    assert plan.before["read_only"] is False
    plan.after["user"]["email"] = "changed@example.com"
    assert current[0]["user"]["email"] == "ops@example.com"


def test_plan_rename_by_id():
    plan = plan_api_key(keys(), spec(id="tok_ci0000000001", name="ci-deployer-old"), AUTH_TOKEN)
    assert plan.actions == [("update", {"name": "ci-deployer-old"})]
    assert plan.after["name"] == "ci-deployer-old"
    assert plan.after["id"] == "tok_ci0000000001"


def test_plan_regenerated_without_setting_changes_only_rotates():
    plan = plan_api_key(keys(), spec(name="ci-deployer", state="regenerated", allowed_ips=["10.20.0.0/24"]), AUTH_TOKEN)
    assert plan.actions == [("rotate", {"name": "ci-deployer"})]
    assert plan.changed is True
    assert plan.after["id"] == "tok_ci0000000001"
    assert plan.after["token_last_slice"] is None


def test_plan_regenerated_with_setting_changes_updates_then_rotates():
    plan = plan_api_key(keys(), spec(name="ci-deployer", state="regenerated", read_only=True), AUTH_TOKEN)
    assert plan.actions == [("update", {"read_only": True}), ("rotate", {"name": "ci-deployer"})]
    assert plan.after["read_only"] is True


def test_plan_regenerated_rename_by_id_rotates_with_new_name():
    plan = plan_api_key(keys(), spec(id="tok_ci0000000001", name="ci-2", state="regenerated"), AUTH_TOKEN)
    assert plan.actions == [("update", {"name": "ci-2"}), ("rotate", {"name": "ci-2"})]


def test_plan_regenerated_missing_with_name_creates():
    plan = plan_api_key(keys(), spec(name="brand-new", state="regenerated", read_only=True), AUTH_TOKEN)
    assert plan.actions == [("create", {"name": "brand-new", "read_only": True})]
    assert plan.before is None


@pytest.mark.parametrize("state, verb", [("present", "updated"), ("regenerated", "rotated")])
def test_plan_missing_id_fails(state, verb):
    with pytest.raises(PlanError) as info:
        plan_api_key(keys(), spec(id="tok_missing000001", name="ci-deployer", state=state), AUTH_TOKEN)
    message = str(info.value)
    assert "tok_missing000001" in message
    assert verb in message
    assert "without id" in message


def test_plan_missing_id_absent_is_a_no_op():
    plan = plan_api_key(keys(), spec(id="tok_missing000001", state="absent"), AUTH_TOKEN)
    assert plan.changed is False
    assert plan.before is None and plan.after is None


def test_plan_absent_missing_name_is_a_no_op():
    plan = plan_api_key(keys(), spec(name="nope", state="absent"), AUTH_TOKEN)
    assert plan.changed is False
    assert plan.actions == []


@pytest.mark.parametrize("by", ["id", "name"])
def test_plan_absent_existing_deletes(by):
    wanted = spec(id="tok_ci0000000001", state="absent") if by == "id" else spec(name="ci-deployer", state="absent")
    plan = plan_api_key(keys(), wanted, AUTH_TOKEN)
    assert plan.actions == [("delete", {})]
    assert plan.before == key(**CI)
    assert plan.after is None


def test_plan_absent_ignores_settings():
    plan = plan_api_key(keys(), spec(name="ci-deployer", state="absent", read_only=True), AUTH_TOKEN)
    assert plan.actions == [("delete", {})]


def test_plan_duplicates_fail():
    dupes = keys() + [key(key_id="tok_ci0000000002", name="ci-deployer")]
    for state in ("present", "absent", "regenerated"):
        with pytest.raises(PlanError) as info:
            plan_api_key(dupes, spec(name="ci-deployer", state=state), AUTH_TOKEN)
        assert "tok_ci0000000001" in str(info.value) and "tok_ci0000000002" in str(info.value)


@pytest.mark.parametrize("state, verb", [("regenerated", "rotate"), ("absent", "delete")])
@pytest.mark.parametrize("by", ["id", "name"])
def test_plan_key_in_use_guard(state, verb, by):
    wanted = spec(id="tok_self00000001", state=state) if by == "id" else spec(name="ansible", state=state)
    with pytest.raises(PlanError) as info:
        plan_api_key(keys(), wanted, AUTH_TOKEN)
    message = str(info.value)
    assert "tok_self00000001" in message
    assert "auth_token" in message
    assert verb in message
    assert "force=true" in message
    assert AUTH_TOKEN not in message


@pytest.mark.parametrize("state, actions", [
    ("regenerated", [("rotate", {"name": "ansible"})]),
    ("absent", [("delete", {})]),
])
def test_plan_key_in_use_with_force(state, actions):
    plan = plan_api_key(keys(), spec(name="ansible", state=state, force=True), AUTH_TOKEN)
    assert plan.actions == actions


def test_plan_present_on_key_in_use_is_allowed():
    plan = plan_api_key(keys(), spec(name="ansible", read_only=True), AUTH_TOKEN)
    assert plan.actions == [("update", {"read_only": True})]


def test_plan_guard_uses_given_token_only():
    plan = plan_api_key(keys(), spec(name="ansible", state="absent"), "some-other-token")
    assert plan.actions == [("delete", {})]


def test_plan_default_state_is_present():
    wanted = spec(name="ci-deployer", read_only=True)
    del wanted["state"]
    assert plan_api_key(keys(), wanted, AUTH_TOKEN).actions == [("update", {"read_only": True})]


# --------------------------------------------------------------------------- Plan.diff


def test_diff_update_shows_before_and_after():
    plan = plan_api_key(keys(), spec(id="tok_ci0000000001", name="ci-2", read_only=True,
                                     allowed_ips=["10.9.0.1", "10.1.0.0/16"]), AUTH_TOKEN)
    assert plan.diff() == {
        "before": {"name": "ci-deployer", "read_only": False, "allowed_ips": ["10.20.0.0/24"]},
        "after": {"name": "ci-2", "read_only": True, "allowed_ips": ["10.1.0.0/16", "10.9.0.1"]},
    }


def test_diff_create_and_delete():
    create = plan_api_key(keys(), spec(name="new", allowed_ips=["10.0.0.1"]), AUTH_TOKEN)
    assert create.diff() == {"before": {}, "after": {"name": "new", "read_only": False, "allowed_ips": ["10.0.0.1"]}}
    delete = plan_api_key(keys(), spec(name="monitoring", state="absent"), AUTH_TOKEN)
    assert delete.diff() == {"before": {"name": "monitoring", "read_only": True, "allowed_ips": []}, "after": {}}


def test_diff_no_change():
    plan = plan_api_key(keys(), spec(name="monitoring"), AUTH_TOKEN)
    assert plan.diff()["before"] == plan.diff()["after"]


def test_diff_never_holds_a_token():
    current = [normalize_api_key(resource(key_id="tok_leak0000001", name="leaky", token=SECRET))]
    for wanted in (spec(name="leaky", state="regenerated", read_only=True), spec(name="leaky", state="absent"),
                   spec(name="leaky", read_only=True), spec(name="other")):
        plan = plan_api_key(current, wanted, AUTH_TOKEN)
        dumped = json.dumps(plan.diff())
        assert SECRET not in dumped
        assert AUTH_TOKEN not in dumped
        assert "token" not in dumped
        assert "token" not in (plan.after or {})


def test_plan_object():
    plan = Plan(None, [], None)
    assert plan.changed is False
    assert plan.diff() == {"before": {}, "after": {}}
    assert Plan(None, [("delete", {})], None).changed is True
