# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the api_key module: the exact HTTP exchange of every branch."""

import json

import pytest

from ansible_collections.latitudesh.cloud.plugins.modules import api_key

from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import (
    AUTH_TOKEN,
    NEW_TOKEN,
    PATH,
    http_response,
    item_answer,
    key_resource,
    list_answer,
    normalized,
    read_timeout,
    remote_disconnected,
)

CI_ID = "tok_ci0000000001"
CI_PATH = PATH + "/" + CI_ID
SELF_ID = "tok_self00000001"
SELF_PATH = PATH + "/" + SELF_ID
NEW_ID = "tok_new000000001"


def ci(**changes):
    resource = key_resource(CI_ID, "ci-deployer", allowed_ips=["10.20.0.0/24"], token_last_slice="c1c1c")
    resource["attributes"].update(changes)
    return resource


def mon():
    return key_resource("tok_mon000000001", "monitoring", read_only=True, allowed_ips=None, token_last_slice="m0m0m")


def own():
    return key_resource(SELF_ID, "ansible", token_last_slice=AUTH_TOKEN[-5:])


def team():
    return list_answer(ci(), mon(), own())


def body(attributes, key_id=None):
    data = {"type": "api_keys", "attributes": attributes}
    if key_id is not None:
        data["id"] = key_id
    return {"data": data}


def rotated(resource, token=NEW_TOKEN):
    resource = json.loads(json.dumps(resource))
    resource["attributes"]["token"] = token
    resource["attributes"]["token_last_slice"] = token[-5:]
    return resource


@pytest.fixture
def run(module_runner):
    def runner(args, outcome="exit", **kwargs):
        kind, result = module_runner(api_key.main, args, **kwargs)
        assert kind == outcome, result
        dumped = json.dumps(result)
        assert AUTH_TOKEN not in dumped
        return result
    return runner


def without_token(result):
    result = dict(result)
    result.pop("token", None)
    return result


# --------------------------------------------------------------------------- present


def test_present_unchanged(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="ci-deployer", read_only=False, allowed_ips=["10.20.0.0/24"]))
    assert result["changed"] is False
    assert result["api_key"] == normalized(ci())
    assert "token" not in result
    assert api.exchange == [("GET", PATH)]


def test_present_unchanged_with_equivalent_networks(api, run):
    api.expect("GET", PATH, None, list_answer(ci(allowed_ips=["10.0.0.1/32", "2001:db8::1/128"])))
    result = run(dict(name="ci-deployer", allowed_ips=["2001:db8::1", " 10.0.0.1"]))
    assert result["changed"] is False


def test_present_unchanged_null_settings(api, run):
    api.expect("GET", PATH, None, list_answer(ci(allowed_ips=None, read_only=None)))
    result = run(dict(name="ci-deployer", allowed_ips=[], read_only=False))
    assert result["changed"] is False
    assert result["api_key"]["allowed_ips"] == []
    assert result["api_key"]["read_only"] is False


def test_create(api, run):
    created = key_resource(NEW_ID, "new-key", allowed_ips=["10.0.0.0/24"], token_last_slice=NEW_TOKEN[-5:],
                           token=NEW_TOKEN)
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key", "allowed_ips": ["10.0.0.0/24"]}), item_answer(created, 201))
    result = run(dict(name="new-key", allowed_ips=["10.0.0.0/24"]))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN
    assert result["api_key"]["id"] == NEW_ID
    assert result["api_key"]["name"] == "new-key"
    assert "token" not in result["api_key"]
    assert NEW_TOKEN not in json.dumps(without_token(result))


def test_create_with_every_attribute(api, run):
    created = key_resource(NEW_ID, "new-key", read_only=False, allowed_ips=[], token=NEW_TOKEN)
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key", "read_only": False, "allowed_ips": []}),
               item_answer(created, 201))
    result = run(dict(name="new-key", read_only=False, allowed_ips=[]))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN


def test_create_with_only_name(api, run):
    created = key_resource(NEW_ID, "new-key", token=NEW_TOKEN)
    api.expect("GET", PATH, None, list_answer())
    api.expect("POST", PATH, body({"name": "new-key"}), item_answer(created, 201))
    result = run(dict(name="new-key"))
    assert result["token"] == NEW_TOKEN


def test_create_answer_without_token_fails(api, run):
    api.expect("GET", PATH, None, list_answer())
    api.expect("POST", PATH, body({"name": "new-key"}), item_answer(key_resource(NEW_ID, "new-key"), 201))
    result = run(dict(name="new-key"), outcome="fail")
    assert "state=regenerated" in result["msg"]
    assert "was created" in result["msg"]
    assert result["changed"] is True


def test_create_refused_is_not_ambiguous(api, run):
    error = {"errors": [{"detail": "is invalid", "source": {"pointer": "/data/attributes/allowed_ips"}}]}
    api.expect("GET", PATH, None, list_answer())
    api.expect("POST", PATH, body({"name": "new-key", "allowed_ips": ["10.0.0.1"]}), http_response(422, error))
    result = run(dict(name="new-key", allowed_ips=["10.0.0.1"]), outcome="fail")
    assert "HTTP 422" in result["msg"]
    assert "/data/attributes/allowed_ips" in result["msg"]
    assert result["changed"] is False
    assert api.exchange == [("GET", PATH), ("POST", PATH)]


def test_update_sends_only_differing_attributes(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), item_answer(ci(read_only=True)))
    result = run(dict(name="ci-deployer", read_only=True, allowed_ips=["10.20.0.0/24"]))
    assert result["changed"] is True
    assert result["api_key"] == normalized(ci(read_only=True))
    assert "token" not in result


def test_update_allowed_ips(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"allowed_ips": ["10.30.0.0/24", "10.0.0.1"]}, CI_ID),
               item_answer(ci(allowed_ips=["10.30.0.0/24", "10.0.0.1/32"])))
    result = run(dict(name="ci-deployer", allowed_ips=["10.30.0.0/24", "10.0.0.1"]))
    assert result["changed"] is True
    assert result["api_key"]["allowed_ips"] == ["10.30.0.0/24", "10.0.0.1/32"]


def test_update_clears_allowed_ips(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"allowed_ips": []}, CI_ID), item_answer(ci(allowed_ips=None)))
    result = run(dict(name="ci-deployer", allowed_ips=[]))
    assert result["changed"] is True
    assert result["api_key"]["allowed_ips"] == []


def test_update_with_empty_answer_reports_predicted_key(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), http_response(200, text=""))
    result = run(dict(name="ci-deployer", read_only=True))
    assert result["changed"] is True
    assert result["api_key"]["read_only"] is True
    assert result["api_key"]["id"] == CI_ID


def test_rename_by_id(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"name": "ci-deployer-old"}, CI_ID), item_answer(ci(name="ci-deployer-old")))
    result = run(dict(id=CI_ID, name="ci-deployer-old"))
    assert result["changed"] is True
    assert result["api_key"]["name"] == "ci-deployer-old"
    assert result["api_key"]["id"] == CI_ID


def test_id_alone_unchanged(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(id=CI_ID))
    assert result["changed"] is False
    assert result["api_key"]["name"] == "ci-deployer"


def test_present_on_the_key_in_use_is_allowed(api, run):
    api.expect("GET", PATH, None, team())
    changed = own()
    changed["attributes"]["allowed_ips"] = ["10.0.0.1/32"]
    api.expect("PATCH", SELF_PATH, body({"allowed_ips": ["10.0.0.1"]}, SELF_ID), item_answer(changed))
    result = run(dict(name="ansible", allowed_ips=["10.0.0.1"]))
    assert result["changed"] is True


# --------------------------------------------------------------------------- regenerated


def test_regenerated_rotates(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID), item_answer(rotated(ci())))
    result = run(dict(name="ci-deployer", state="regenerated"))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN
    assert result["api_key"]["id"] == CI_ID
    assert result["api_key"]["token_last_slice"] == NEW_TOKEN[-5:]
    assert "token" not in result["api_key"]
    assert NEW_TOKEN not in json.dumps(without_token(result))


def test_regenerated_with_setting_change_patches_then_rotates(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), item_answer(ci(read_only=True)))
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID), item_answer(rotated(ci(read_only=True))))
    result = run(dict(name="ci-deployer", state="regenerated", read_only=True, allowed_ips=["10.20.0.0/24"]))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN
    assert result["api_key"]["id"] == CI_ID
    assert result["api_key"]["read_only"] is True


def test_regenerated_by_id_with_rename(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"name": "ci-2"}, CI_ID), item_answer(ci(name="ci-2")))
    api.expect("PUT", CI_PATH, body({"name": "ci-2"}, CI_ID), item_answer(rotated(ci(name="ci-2"))))
    result = run(dict(id=CI_ID, name="ci-2", state="regenerated"))
    assert result["api_key"]["name"] == "ci-2"
    assert result["token"] == NEW_TOKEN


def test_regenerated_missing_key_with_name_creates(api, run):
    created = key_resource(NEW_ID, "new-key", token=NEW_TOKEN)
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), item_answer(created, 201))
    result = run(dict(name="new-key", state="regenerated"))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN
    assert result["api_key"]["id"] == NEW_ID


def test_rotate_answer_without_token_fails(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID), item_answer(ci()))
    result = run(dict(name="ci-deployer", state="regenerated"), outcome="fail")
    assert "state=regenerated" in result["msg"]
    assert CI_ID in result["msg"]
    assert result["changed"] is True


# --------------------------------------------------------------------------- absent


@pytest.mark.parametrize("args", [dict(name="ci-deployer"), dict(id=CI_ID)], ids=["by-name", "by-id"])
def test_absent_deletes(api, run, args):
    api.expect("GET", PATH, None, team())
    api.expect("DELETE", CI_PATH, None, http_response(200, {"meta": {}}))
    result = run(dict(args, state="absent"))
    assert result["changed"] is True
    assert result["api_key"] == {}
    assert result["deleted_id"] == CI_ID and result["actions"] == ["delete"]
    assert "token" not in result


@pytest.mark.parametrize("args", [dict(name="gone"), dict(id="tok_gone00000001")], ids=["by-name", "by-id"])
def test_absent_missing_is_unchanged(api, run, args):
    api.expect("GET", PATH, None, team())
    result = run(dict(args, state="absent"))
    assert result["changed"] is False
    assert result["api_key"] == {}
    assert "deleted_id" not in result and result["actions"] == []
    assert api.exchange == [("GET", PATH)]


def test_absent_delete_answer_lost_then_404_counts_as_deleted(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("DELETE", CI_PATH, None, read_timeout())
    api.expect("DELETE", CI_PATH, None, http_response(404, {"errors": [{"detail": "Specified Record Not Found"}]}))
    result = run(dict(name="ci-deployer", state="absent"))
    assert result["changed"] is True
    assert result["api_key"] == {}


# --------------------------------------------------------------------------- failures after one GET


@pytest.mark.parametrize("state", ["present", "absent", "regenerated"])
def test_duplicate_names_fail_listing_ids(api, run, state):
    twin = key_resource("tok_ci0000000002", "ci-deployer")
    api.expect("GET", PATH, None, list_answer(ci(), mon(), twin))
    result = run(dict(name="ci-deployer", state=state, read_only=True), outcome="fail")
    assert CI_ID in result["msg"]
    assert "tok_ci0000000002" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert result["changed"] is False
    assert api.exchange == [("GET", PATH)]


@pytest.mark.parametrize("state", ["present", "regenerated"])
def test_missing_id_fails(api, run, state):
    api.expect("GET", PATH, None, team())
    result = run(dict(id="tok_missing000001", name="x", state=state), outcome="fail")
    assert "tok_missing000001" in result["msg"]
    assert "without id" in result["msg"]
    assert result["changed"] is False
    assert api.exchange == [("GET", PATH)]


@pytest.mark.parametrize("state, verb", [("regenerated", "rotate"), ("absent", "delete")])
def test_key_in_use_guard(api, run, state, verb):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="ansible", state=state), outcome="fail")
    assert SELF_ID in result["msg"]
    assert verb in result["msg"]
    assert "force=true" in result["msg"]
    assert result["changed"] is False
    assert api.exchange == [("GET", PATH)]


def test_key_in_use_rotate_with_force(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", SELF_PATH, body({"name": "ansible"}, SELF_ID), item_answer(rotated(own())))
    result = run(dict(name="ansible", state="regenerated", force=True))
    assert result["changed"] is True
    assert result["token"] == NEW_TOKEN


def test_key_in_use_delete_with_force(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("DELETE", SELF_PATH, None, http_response(200, {"meta": {}}))
    result = run(dict(id=SELF_ID, state="absent", force=True))
    assert result["changed"] is True
    assert result["api_key"] == {}


def test_list_failure(api, run):
    api.expect("GET", PATH, None, http_response(401, {"errors": [{"detail": "Invalid token " + AUTH_TOKEN}]}))
    result = run(dict(name="ci-deployer"), outcome="fail")
    assert "HTTP 401" in result["msg"]
    assert "LATITUDESH_AUTH_TOKEN" in result["msg"]
    assert result["changed"] is False


def test_list_answer_not_understood(api, run):
    api.expect("GET", PATH, None, http_response(200, {"data": {"id": "tok_x"}}))
    result = run(dict(name="ci-deployer"), outcome="fail")
    assert "'data'" in result["msg"]


# --------------------------------------------------------------------------- check mode


CHECK_CASES = {
    "create": (dict(name="new-key", read_only=True, allowed_ips=["10.0.0.1"]),
               dict(id=None, name="new-key", read_only=True, allowed_ips=["10.0.0.1"])),
    "update": (dict(name="ci-deployer", read_only=True), dict(id=CI_ID, name="ci-deployer", read_only=True)),
    "rename": (dict(id=CI_ID, name="renamed"), dict(id=CI_ID, name="renamed")),
    "regenerated": (dict(name="ci-deployer", state="regenerated"),
                    dict(id=CI_ID, name="ci-deployer", token_last_slice=None)),
    "regenerated-update": (dict(name="ci-deployer", state="regenerated", allowed_ips=[]),
                           dict(id=CI_ID, allowed_ips=[], token_last_slice=None)),
    "regenerated-create": (dict(name="new-key", state="regenerated"), dict(id=None, name="new-key")),
    "absent": (dict(name="ci-deployer", state="absent"), None),
    "force-rotate": (dict(name="ansible", state="regenerated", force=True), dict(id=SELF_ID)),
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_mode_sends_only_the_list_request(api, run, case):
    args, expected = CHECK_CASES[case]
    api.expect("GET", PATH, None, team())
    result = run(args, check_mode=True)
    assert api.exchange == [("GET", PATH)]
    assert result["changed"] is True
    assert "token" not in result
    if expected is None:
        assert result["api_key"] == {}
    else:
        for field, value in expected.items():
            assert result["api_key"][field] == value, field
        assert "token" not in result["api_key"]


def test_check_mode_unchanged(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="monitoring", read_only=True), check_mode=True)
    assert result["changed"] is False
    assert result["api_key"] == normalized(mon())


def test_check_mode_guard_still_fails(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="ansible", state="absent"), check_mode=True, outcome="fail")
    assert "force=true" in result["msg"]


# --------------------------------------------------------------------------- diff mode


def test_diff_on_create_never_holds_the_token(api, run):
    created = key_resource(NEW_ID, "new-key", allowed_ips=["10.0.0.2", "10.0.0.1"], token=NEW_TOKEN)
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key", "allowed_ips": ["10.0.0.2", "10.0.0.1"]}),
               item_answer(created, 201))
    result = run(dict(name="new-key", allowed_ips=["10.0.0.2", "10.0.0.1"]), diff=True)
    assert result["diff"] == {
        "before": {},
        "after": {"name": "new-key", "read_only": False, "allowed_ips": ["10.0.0.1", "10.0.0.2"]},
    }
    assert result["token"] == NEW_TOKEN
    assert NEW_TOKEN not in json.dumps(without_token(result))


def test_diff_on_update(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"name": "ci-2", "read_only": True}, CI_ID),
               item_answer(ci(name="ci-2", read_only=True)))
    result = run(dict(id=CI_ID, name="ci-2", read_only=True), diff=True)
    assert result["diff"] == {
        "before": {"name": "ci-deployer", "read_only": False, "allowed_ips": ["10.20.0.0/24"]},
        "after": {"name": "ci-2", "read_only": True, "allowed_ips": ["10.20.0.0/24"]},
    }


def test_diff_on_rotate_never_holds_the_token(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID), item_answer(rotated(ci())))
    result = run(dict(name="ci-deployer", state="regenerated"), diff=True)
    assert "before" in result["diff"] and "after" in result["diff"]
    assert NEW_TOKEN not in json.dumps(without_token(result))
    assert "token" not in json.dumps(result["diff"])


def test_diff_on_delete(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("DELETE", CI_PATH, None, http_response(200, {"meta": {}}))
    result = run(dict(name="ci-deployer", state="absent"), diff=True)
    assert result["diff"] == {
        "before": {"name": "ci-deployer", "read_only": False, "allowed_ips": ["10.20.0.0/24"]},
        "after": {},
    }


def test_diff_in_check_mode(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="ci-deployer", read_only=True), diff=True, check_mode=True)
    assert result["diff"]["before"]["read_only"] is False
    assert result["diff"]["after"]["read_only"] is True


def test_no_diff_key_without_diff_mode(api, run):
    api.expect("GET", PATH, None, team())
    result = run(dict(name="ci-deployer", read_only=True), check_mode=True)
    assert "diff" not in result


# --------------------------------------------------------------------------- ambiguous writes


@pytest.mark.parametrize("lost", [read_timeout, remote_disconnected,
                                  lambda: http_response(500, text="oops"),
                                  lambda: http_response(201, text=""), KeyboardInterrupt],
                         ids=["read-timeout", "dropped", "500", "empty-201", "interrupted"])
def test_ambiguous_create_key_now_exists(api, run, lost):
    made = key_resource(NEW_ID, "new-key")
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), lost())
    api.expect("GET", PATH, None, list_answer(ci(), mon(), own(), made))
    result = run(dict(name="new-key"), outcome="fail")
    assert NEW_ID in result["msg"]
    assert "state=regenerated" in result["msg"]
    assert "no second key was created" in result["msg"]
    assert result["changed"] is True
    assert api.exchange == [("GET", PATH), ("POST", PATH), ("GET", PATH)]


GATEWAY_504 = "<html><head><title>504 Gateway Time-out</title></head><body>504 Gateway Time-out</body></html>"


@pytest.mark.parametrize("lost", [read_timeout, remote_disconnected,
                                  lambda: http_response(502, text="<html>502 Bad Gateway</html>"),
                                  lambda: http_response(503, text="busy"),
                                  lambda: http_response(504, text=GATEWAY_504, headers={"Content-Type": "text/html"}),
                                  KeyboardInterrupt],
                         ids=["read-timeout", "dropped", "502", "503", "504", "interrupted"])
def test_create_that_may_still_be_applied_is_never_called_safe(api, run, lost):
    # A gateway may answer 504 at once and pass the POST on later; a timed-out or lost POST may still
    # be processed: a list that does not show the key yet proves nothing, and a re-run at once could
    # make a second key of the name.
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), lost())
    api.expect("GET", PATH, None, team())
    result = run(dict(name="new-key"), outcome="fail")
    msg = result["msg"]
    assert "safe to run" not in msg
    assert "nothing was created" not in msg
    assert "may still apply the request" in msg
    assert "Do not run the task again at once: wait" in msg
    assert "latitudesh.cloud.api_key_info" in msg
    assert "state=regenerated" in msg
    assert "If two keys named 'new-key' exist afterwards, delete by id (state=absent)" in msg
    assert "without a token file" in msg
    assert ".." not in msg
    assert result["changed"] is True
    assert api.exchange == [("GET", PATH), ("POST", PATH), ("GET", PATH)]


def test_create_refused_by_the_api_with_500_not_listed_is_safe_to_rerun(api, run):
    # The API answered itself: the request is over, and the list made after it is final.
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), http_response(500, text="oops"))
    api.expect("GET", PATH, None, team())
    result = run(dict(name="new-key"), outcome="fail")
    assert "HTTP 500" in result["msg"]
    assert "nothing was created; it is safe to run the task again" in result["msg"]
    assert "may still apply" not in result["msg"]
    assert result["changed"] is False
    assert api.exchange == [("GET", PATH), ("POST", PATH), ("GET", PATH)]


def test_timed_out_create_names_the_timeout(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), read_timeout())
    api.expect("GET", PATH, None, team())
    result = run(dict(name="new-key"), outcome="fail")
    assert "api_timeout" in result["msg"]
    assert "may still apply the request" in result["msg"]


def test_ambiguous_create_and_relist_fails(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("POST", PATH, body({"name": "new-key"}), read_timeout())
    api.expect("GET", PATH, None, http_response(401, {"errors": [{"detail": "Unauthorized"}]}))
    result = run(dict(name="new-key"), outcome="fail")
    assert "api_key_info" in result["msg"]
    assert "no duplicate" in result["msg"]
    assert "safe to run" not in result["msg"]
    assert result["changed"] is True


@pytest.mark.parametrize("lost, later", [
    (lambda: http_response(500, text="oops"), False),
    (remote_disconnected, True),
    (read_timeout, True),
    (lambda: http_response(200, text=""), False),
    (lambda: http_response(502, text="<html>502 Bad Gateway</html>"), True),
    (lambda: http_response(504, text=GATEWAY_504, headers={"Content-Type": "text/html"}), True),
], ids=["500", "dropped", "read-timeout", "empty-200", "502", "504"])
def test_ambiguous_rotate(api, run, lost, later):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID), lost())
    result = run(dict(name="ci-deployer", state="regenerated"), outcome="fail")
    msg = result["msg"]
    assert "old token may already be invalid" in msg
    assert "state=regenerated" in msg
    assert CI_ID in msg
    # A PUT that the API may still apply later would make the token of an at-once re-run invalid.
    assert ("wait a few minutes, then run the task again" in msg) is later
    assert ("token_last_slice" in msg) is later
    assert result["changed"] is True
    assert api.exchange == [("GET", PATH), ("PUT", CI_PATH)]


def test_rotate_refused_is_reported_as_is(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID),
               http_response(403, {"errors": [{"detail": "Forbidden"}]}))
    result = run(dict(name="ci-deployer", state="regenerated"), outcome="fail")
    assert "HTTP 403" in result["msg"]
    assert "may already be invalid" not in result["msg"]
    assert result["changed"] is False


def test_rotate_refused_after_settings_were_patched_reports_changed(api, run):
    # The PATCH was applied before the PUT failed: the task changed the key.
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), item_answer(ci(read_only=True)))
    api.expect("PUT", CI_PATH, body({"name": "ci-deployer"}, CI_ID),
               http_response(403, {"errors": [{"detail": "Forbidden"}]}))
    result = run(dict(name="ci-deployer", state="regenerated", read_only=True), outcome="fail")
    assert "HTTP 403" in result["msg"]
    assert result["changed"] is True
    assert api.exchange == [("GET", PATH), ("PATCH", CI_PATH), ("PUT", CI_PATH)]


@pytest.mark.parametrize("method, path, args", [
    ("PATCH", CI_PATH, dict(name="ci-deployer", read_only=True)),
    ("DELETE", CI_PATH, dict(name="ci-deployer", state="absent")),
], ids=["patch", "delete"])
def test_write_that_may_have_been_applied_reports_changed(api, run, method, path, args):
    # api_retries=1: the write is sent twice, and both answers are lost.
    api.expect("GET", PATH, None, team())
    for dummy in range(2):
        api.expect(method, path, body({"read_only": True}, CI_ID) if method == "PATCH" else None, read_timeout())
    result = run(dict(args, api_retries=1), outcome="fail")
    assert "may have been applied" in result["msg"]
    assert result["changed"] is True


def test_patch_retried_after_server_error(api, run):
    api.expect("GET", PATH, None, team())
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), http_response(503, text="busy"))
    api.expect("PATCH", CI_PATH, body({"read_only": True}, CI_ID), item_answer(ci(read_only=True)))
    result = run(dict(name="ci-deployer", read_only=True))
    assert result["changed"] is True


# --------------------------------------------------------------------------- bad input: no request at all


@pytest.mark.parametrize("args, fragment", [
    (dict(id="not an id"), "id"),
    (dict(id="tok_abc\n"), "id"),
    (dict(name=""), "name"),
    (dict(name="   "), "name"),
    (dict(name="x" * 256), "255"),
    (dict(name="ci", allowed_ips=["10.0.0.300"]), "allowed_ips"),
    (dict(name="ci", allowed_ips=["10.0.0.0/24", "nope"]), "'nope'"),
    (dict(name="ci", state="rotated"), "state"),
    (dict(), "id"),
    (dict(name="ci", api_url="http://api.example.com"), "plain http"),
    (dict(name="ci", api_url="api.example.com"), "api_url"),
    (dict(name="ci", api_timeout=0), "api_timeout"),
    (dict(name="ci", api_retries=-1), "api_retries"),
    (dict(name="ci", auth_token="   "), "LATITUDESH_AUTH_TOKEN"),
])
def test_bad_input_fails_before_any_request(api, run, args, fragment):
    result = run(args, outcome="fail")
    assert fragment in result["msg"]
    assert api.calls == []


def test_missing_auth_token_fails_before_any_request(api, module_runner):
    kind, result = module_runner(api_key.main, dict(name="ci"), auth=False)
    assert kind == "fail"
    assert "auth_token" in result["msg"]
    assert api.calls == []


def test_auth_token_from_environment(api, module_runner, monkeypatch):
    monkeypatch.setenv("LATITUDESH_TOKEN", AUTH_TOKEN)
    api.expect("GET", PATH, None, team())
    kind, result = module_runner(api_key.main, dict(name="monitoring"), auth=False)
    assert kind == "exit"
    assert result["changed"] is False
