# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the api_key_plan and api_key_spec_errors filters.

Token paths, token file checks, planning errors of the role and api_key_summary are tested in
test_api_keys_custody.py.
"""

import itertools
import os
import subprocess
import sys

import pytest

from ansible_collections.latitudesh.cloud.plugins.filter.api_keys import (
    FilterModule,
    api_key_plan,
    api_key_spec_errors,
    api_key_summary,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import normalize_api_key

AUTH_TOKEN = "5ec2e7a11ce0b0b5ec2e7a11ce0b0b0e1f2a"


def team_key(key_id, name, read_only=False, allowed_ips=None, token_last_slice="9c3d1", **times):
    """A key as api_key_info returns it (normalize_api_key of an API resource).

    ``times``: any of created_at, updated_at and last_used_at (absent: None).
    """
    attributes = {
        "name": name,
        "read_only": read_only,
        "allowed_ips": allowed_ips,
        "token_last_slice": token_last_slice,
        "api_version": "2023-06-01",
        "user": {"id": "user_1", "email": "ops@example.com"},
    }
    attributes.update(times)
    return normalize_api_key({"id": key_id, "type": "api_keys", "attributes": attributes})


def plan(**outcomes):
    result = dict(converge=[], purge=[], errors=[], missing_tokens=[], too_old=[], token_age_unknown=[], token_age_limits={},
                  created=[], updated=[], rotated=[], deleted=[], unchanged=[])
    result.update(outcomes)
    return result


def converge(name, action, state="present", read_only=None, allowed_ips=None, key_id=None):
    return dict(name=name, id=key_id, state=state, read_only=read_only, allowed_ips=allowed_ips, action=action)


TEAM_TOKENS = itertools.count()


def team(**overrides):
    """A team declaration; each gets a token of its own (one token belongs to one team)."""
    base = dict(name="prod", auth_token="%s-%d" % (AUTH_TOKEN, next(TEAM_TOKENS)), api_keys=[{"name": "ci-deployer"}])
    base.update(overrides)
    return base


def key_errors(*keys):
    return api_key_spec_errors([team(api_keys=list(keys))])


# --------------------------------------------------------------------------- api_key_spec_errors


def test_spec_errors_valid_declaration_is_empty():
    teams = [
        team(name="prod", api_keys=[
            {"name": "ci-deployer", "state": "present", "read_only": False, "allowed_ips": ["10.0.0.0/24", "192.0.2.10"]},
            {"name": "monitoring", "read_only": True},
            {"name": "old", "state": "absent"},
            {"name": "rotate-me", "state": "regenerated", "allowed_ips": ["2001:db8::/64"]},
        ]),
        team(name="staging", auth_token="other-token", api_keys=[]),
    ]
    assert api_key_spec_errors(teams) == []


@pytest.mark.parametrize("value", [None, {"name": "prod"}, "prod"])
def test_spec_errors_input_not_a_list(value):
    assert api_key_spec_errors(value) == ["team_api_keys_teams must be a list of teams, got %s." % type(value).__name__]


def test_spec_errors_team_not_a_dict_names_its_index():
    assert api_key_spec_errors([team(), "staging"]) == [
        "team_api_keys_teams[1] must be a dict with name, auth_token and api_keys.",
    ]


NOT_A_LABEL = "team_api_keys_teams[1].name must be a non-blank team label (it names the token directory)."
NOT_A_DIRECTORY = ("team_api_keys_teams[1].name %s %s; it names the team's token directory, so choose a label that is "
                   "a plain directory name.")


@pytest.mark.parametrize("name, message", [
    ("", NOT_A_LABEL),
    ("   ", NOT_A_LABEL),
    (None, NOT_A_LABEL),
    (42, NOT_A_LABEL),
    ("prod/eu", NOT_A_DIRECTORY % ("'prod/eu'", "contains '/'")),
    (".hidden", NOT_A_DIRECTORY % ("'.hidden'", "starts with '.' (the token directory keeps its lock and records in "
                                                "such files)")),
    ("..", NOT_A_DIRECTORY % ("'..'", "is '..', which always means the current or the parent directory")),
])
def test_spec_errors_bad_team_name(name, message):
    assert api_key_spec_errors([team(name="ok"), team(name=name)]) == [message]


def test_spec_errors_duplicate_team_name():
    assert api_key_spec_errors([team(name="prod"), team(name="staging"), team(name="prod")]) == [
        "team_api_keys_teams[2].name 'prod' is declared twice.",
    ]


def test_spec_errors_team_names_that_differ_only_in_unicode_form():
    # NFC "café" and NFD "café" are different strings that show the same: two token directories alike.
    errors = api_key_spec_errors([team(name=u"caf\u00e9"), team(name=u"cafe\u0301")])
    assert len(errors) == 1
    assert errors[0].startswith(u"team_api_keys_teams[1].name 'cafe\u0301' differs from 'caf\u00e9' only in letter "
                                u"case, Unicode form (NFC, NFD) or an invisible joiner or selector")


@pytest.mark.parametrize("overrides", [{"auth_token": ""}, {"auth_token": "  "}, {"auth_token": None}, {"auth_token": 123}])
def test_spec_errors_bad_auth_token(overrides):
    assert api_key_spec_errors([team(name="a"), team(name="b", **overrides)]) == [
        "team_api_keys_teams[1].auth_token (team 'b') must be that team's admin token (a non-blank string).",
    ]


def test_spec_errors_missing_auth_token():
    declared = team()
    del declared["auth_token"]
    assert api_key_spec_errors([declared]) == [
        "team_api_keys_teams[0].auth_token (team 'prod') must be that team's admin token (a non-blank string).",
    ]


@pytest.mark.parametrize("api_keys", [None, {"name": "ci"}, "ci"])
def test_spec_errors_api_keys_not_a_list(api_keys):
    assert api_key_spec_errors([team(name="a"), team(name="b", api_keys=api_keys)]) == [
        "team_api_keys_teams[1].api_keys (team 'b') must be a list (it may be empty).",
    ]


def test_spec_errors_api_keys_missing():
    declared = team()
    del declared["api_keys"]
    assert api_key_spec_errors([declared]) == [
        "team_api_keys_teams[0].api_keys (team 'prod') must be a list (it may be empty).",
    ]


def test_spec_errors_empty_api_keys_is_fine():
    assert api_key_spec_errors([team(api_keys=[])]) == []


def test_spec_errors_reports_every_team_problem_at_once():
    assert api_key_spec_errors([team(name="a/b", auth_token="", api_keys=None)]) == [
        "team_api_keys_teams[0].name 'a/b' contains '/'; it names the team's token directory, so choose a label that "
        "is a plain directory name.",
        "team_api_keys_teams[0].auth_token (team 'a/b') must be that team's admin token (a non-blank string).",
        "team_api_keys_teams[0].api_keys (team 'a/b') must be a list (it may be empty).",
    ]


@pytest.mark.parametrize("key", [{}, {"read_only": True}, {"name": None}, {"name": 7}, "ci-deployer", None])
def test_spec_errors_key_without_name(key):
    assert key_errors({"name": "ok"}, key) == [
        "team_api_keys_teams[0].api_keys[1].name is required and must be a string.",
    ]


@pytest.mark.parametrize("name, reason", [
    ("ci/deployer", "contains '/'"),
    ("/", "contains '/'"),
    (".", "is '.', which always means the current or the parent directory"),
    ("..", "is '..', which always means the current or the parent directory"),
])
def test_spec_errors_key_name_that_is_not_a_file_name(name, reason):
    assert key_errors({"name": name}) == [
        "team_api_keys_teams[0].api_keys[0].name %r in team 'prod' %s; the key's token file is <team>/<name>.token, "
        "so choose a name that is a plain file name." % (name, reason),
    ]


def test_spec_errors_blank_key_name_uses_module_validation():
    assert key_errors({"name": "  "}) == [
        "team_api_keys_teams[0].api_keys[0] (key '  ' in team 'prod'): name must not be blank: give the key's name, "
        "for example name=ci-deployer.",
    ]


def test_spec_errors_duplicate_key_name_in_one_team():
    assert key_errors({"name": "ci"}, {"name": "mon"}, {"name": "ci"}) == [
        "team_api_keys_teams[0].api_keys[2].name 'ci' is declared twice in team 'prod'.",
    ]


TWINS = (u" only in letter case, Unicode form (NFC, NFD) or an invisible joiner or selector, so their token files "
         u"would be one file on macOS and look alike elsewhere: choose names that differ in more than that.")


def test_spec_errors_key_names_that_differ_only_in_unicode_form():
    errors = key_errors({"name": u"cafe\u0301"}, {"name": "mon"}, {"name": u"caf\u00e9"})
    assert errors == [u"team_api_keys_teams[0].api_keys[2].name 'caf\u00e9' in team 'prod' differs from 'cafe\u0301'" + TWINS]


def test_spec_errors_names_that_differ_only_in_case():
    # Two keys, one token file on macOS: the second write would replace the first key's only token.
    assert key_errors({"name": "Deployer"}, {"name": "deployer"}) == [
        "team_api_keys_teams[0].api_keys[1].name 'deployer' in team 'prod' differs from 'Deployer'" + TWINS]
    errors = api_key_spec_errors([team(name="Prod"), team(name="prod")])
    assert len(errors) == 1 and "differs from 'Prod' only in letter case" in errors[0]


@pytest.mark.parametrize("twin", [u"caf\u00e9\ufe0f", u"\u65e5\u672c\u200c\u8a9e"])
def test_spec_errors_names_that_differ_only_in_a_joiner_or_selector(twin):
    # Allowed inside non-ASCII names, a joiner or selector shows as nothing: the names would look alike.
    plain = u"caf\u00e9" if twin.startswith(u"caf") else u"\u65e5\u672c\u8a9e"
    errors = key_errors({"name": plain}, {"name": twin})
    assert len(errors) == 1 and u"invisible joiner or selector" in errors[0]


def test_spec_errors_with_token_dir_check_the_whole_token_file_path():
    # Every component is short enough, but the whole path is not: the api_key action would refuse the
    # second key's token_path after the first key was created.
    token_dir = "/srv/" + "/".join(["d" * 250] * 16)
    teams = [team(name="prod", api_keys=[{"name": "short"}, {"name": "k" * 240}])]
    assert api_key_spec_errors(teams) == []
    errors = api_key_spec_errors(teams, token_dir=token_dir)
    assert len(errors) == 1
    assert errors[0].startswith("team_api_keys_teams[0].api_keys[1] (key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' in "
                                "team 'prod'): its token file <token_dir>/<team>/<name>.token: the path is longer than "
                                "4095 bytes; choose a shorter team_api_keys_token_dir")
    assert api_key_spec_errors(teams, token_dir="/srv/tokens") == []


def test_spec_errors_check_the_token_file_path_as_the_file_system_sees_it(monkeypatch):
    # Within the limit as written, over it once "~" is expanded (or a relative directory joined to base_dir).
    monkeypatch.setenv("HOME", "/home/" + "h" * 200)
    teams = [team(name="prod", api_keys=[{"name": "k" * 200}])]
    written = "/".join(["d" * 250] * 15)
    assert api_key_spec_errors(teams, token_dir="/" + written) == []
    assert "longer than 4095 bytes" in api_key_spec_errors(teams, token_dir="~/" + written)[0]
    assert api_key_spec_errors(teams, token_dir=written) == []
    assert "longer than 4095 bytes" in api_key_spec_errors(teams, token_dir=written, base_dir="/srv/" + "p" * 200)[0]


def test_spec_errors_same_key_name_in_two_teams_is_fine():
    teams = [team(name="prod", api_keys=[{"name": "ci"}]), team(name="staging", api_keys=[{"name": "ci"}])]
    assert api_key_spec_errors(teams) == []


@pytest.mark.parametrize("allowed_ips", ["10.0.0.1", {"ip": "10.0.0.1"}, ["10.0.0.1", 10], [None]])
def test_spec_errors_allowed_ips_not_a_list_of_strings(allowed_ips):
    assert key_errors({"name": "ok"}, {"name": "ci", "allowed_ips": allowed_ips}) == [
        "team_api_keys_teams[0].api_keys[1] (key 'ci' in team 'prod'): allowed_ips must be a list of IP addresses or "
        "CIDR networks.",
    ]


def test_spec_errors_bad_ip_names_the_entry():
    assert key_errors({"name": "ci", "allowed_ips": ["10.0.0.1", "10.0.0.300", "not-an-ip"]}) == [
        "team_api_keys_teams[0].api_keys[0] (key 'ci' in team 'prod'): allowed_ips entry '10.0.0.300' is not an IP "
        "address or CIDR network (examples: 192.0.2.10, 10.0.0.0/24, 2001:db8::/64).",
        "team_api_keys_teams[0].api_keys[0] (key 'ci' in team 'prod'): allowed_ips entry 'not-an-ip' is not an IP "
        "address or CIDR network (examples: 192.0.2.10, 10.0.0.0/24, 2001:db8::/64).",
    ]


def test_spec_errors_empty_allowed_ips_is_fine():
    assert key_errors({"name": "ci", "allowed_ips": []}) == []


def test_spec_errors_read_only_not_boolean_like():
    assert key_errors({"name": "ok"}, {"name": "ci", "read_only": "maybe"}) == [
        "team_api_keys_teams[0].api_keys[1] (key 'ci' in team 'prod'): read_only must be a boolean, got 'maybe'.",
    ]


@pytest.mark.parametrize("read_only", ["no", "yes", 0, 1, "true", "False", True, False])
def test_spec_errors_read_only_boolean_like_is_accepted(read_only):
    assert key_errors({"name": "ci", "read_only": read_only}) == []


@pytest.mark.parametrize("state", ["deleted", "Present", "rotated"])
def test_spec_errors_bad_state(state):
    assert key_errors({"name": "ok"}, {"name": "ci", "state": state}) == [
        "team_api_keys_teams[0].api_keys[1] (key 'ci' in team 'prod'): state must be one of present, absent, "
        "regenerated, got %r." % state,
    ]


def test_spec_errors_paths_point_at_the_right_team_and_key():
    teams = [
        team(name="prod", api_keys=[{"name": "ci"}]),
        team(name="staging", api_keys=[{"name": "ci"}, {"name": "mon", "state": "gone"}]),
    ]
    assert api_key_spec_errors(teams) == [
        "team_api_keys_teams[1].api_keys[1] (key 'mon' in team 'staging'): state must be one of present, absent, "
        "regenerated, got 'gone'.",
    ]


# --------------------------------------------------------------------------- api_key_plan


CI_ID = "tok_ci0000000001"
MON_ID = "tok_mon000000001"
OLD_ID = "tok_old000000001"
SELF_ID = "tok_self00000001"


def team_keys():
    return [
        team_key(CI_ID, "ci-deployer", allowed_ips=["10.20.0.0/24", "192.0.2.10/32"]),
        team_key(MON_ID, "monitoring", read_only=True),
        team_key(OLD_ID, "old-laptop"),
        team_key(SELF_ID, "ansible", token_last_slice=AUTH_TOKEN[-5:]),
    ]


def test_plan_unchanged_key():
    declared = [{"name": "monitoring", "read_only": True}, {"name": "ci-deployer", "allowed_ips": ["10.20.0.0/24", "192.0.2.10"]}]
    assert api_key_plan(team_keys(), declared) == plan(unchanged=["monitoring", "ci-deployer"])


def test_plan_name_only_declaration_is_unchanged():
    assert api_key_plan(team_keys(), [{"name": "ci-deployer"}]) == plan(unchanged=["ci-deployer"])


def test_plan_missing_key_is_created():
    declared = [{"name": "backup", "read_only": True, "allowed_ips": ["10.0.0.0/8"]}, {"name": "monitoring", "read_only": True}]
    assert api_key_plan(team_keys(), declared) == plan(
        converge=[converge("backup", "create", read_only=True, allowed_ips=["10.0.0.0/8"])],
        created=["backup"],
        unchanged=["monitoring"],
    )


def test_plan_missing_key_state_defaults_to_present():
    result = api_key_plan([], [{"name": "backup", "state": None}])
    assert result["converge"] == [converge("backup", "create")]
    assert result["created"] == ["backup"]


def test_plan_read_only_differs_is_update():
    assert api_key_plan(team_keys(), [{"name": "monitoring", "read_only": False}]) == plan(
        converge=[converge("monitoring", "update", read_only=False)],
        updated=["monitoring"],
    )


def test_plan_allowed_ips_differ_is_update():
    declared = [{"name": "ci-deployer", "allowed_ips": ["10.20.0.0/24"]}]
    assert api_key_plan(team_keys(), declared) == plan(
        converge=[converge("ci-deployer", "update", allowed_ips=["10.20.0.0/24"])],
        updated=["ci-deployer"],
    )


def test_plan_allowed_ips_cleared_is_update():
    assert api_key_plan(team_keys(), [{"name": "ci-deployer", "allowed_ips": []}])["updated"] == ["ci-deployer"]


@pytest.mark.parametrize("allowed_ips", [
    ["192.0.2.10", "10.20.0.0/24"],
    ["10.20.0.0/24", "192.0.2.10/32"],
    ["192.0.2.10/32", " 10.20.0.0/24 "],
    ["10.20.0.5/24", "192.0.2.10"],
])
def test_plan_allowed_ips_compared_as_network_sets(allowed_ips):
    assert api_key_plan(team_keys(), [{"name": "ci-deployer", "allowed_ips": allowed_ips}]) == plan(unchanged=["ci-deployer"])


def test_plan_host_address_equals_its_slash_32():
    keys = [team_key(CI_ID, "ci-deployer", allowed_ips=["10.0.0.1/32"])]
    assert api_key_plan(keys, [{"name": "ci-deployer", "allowed_ips": ["10.0.0.1"]}]) == plan(unchanged=["ci-deployer"])
    keys = [team_key(CI_ID, "ci-deployer", allowed_ips=["10.0.0.1"])]
    assert api_key_plan(keys, [{"name": "ci-deployer", "allowed_ips": ["10.0.0.1/32"]}]) == plan(unchanged=["ci-deployer"])
    assert api_key_plan(keys, [{"name": "ci-deployer", "allowed_ips": ["10.0.0.2"]}])["updated"] == ["ci-deployer"]


def test_plan_read_only_no_string_is_false():
    # "no" is truthy as a Python string: without conversion it would look like read_only=True.
    assert api_key_plan(team_keys(), [{"name": "ci-deployer", "read_only": "no"}]) == plan(unchanged=["ci-deployer"])
    result = api_key_plan(team_keys(), [{"name": "monitoring", "read_only": "no"}])
    assert result["updated"] == ["monitoring"]
    assert result["converge"][0]["read_only"] is False


def test_plan_read_only_yes_string_is_true():
    assert api_key_plan(team_keys(), [{"name": "monitoring", "read_only": "yes"}]) == plan(unchanged=["monitoring"])
    result = api_key_plan(team_keys(), [{"name": "ci-deployer", "read_only": "yes"}])
    assert result["converge"] == [converge("ci-deployer", "update", read_only=True)]


def test_plan_regenerated_is_rotate():
    assert api_key_plan(team_keys(), [{"name": "monitoring", "state": "regenerated"}]) == plan(
        converge=[converge("monitoring", "rotate", state="regenerated")],
        rotated=["monitoring"],
    )


def test_plan_regenerated_with_changed_settings_is_still_rotate():
    result = api_key_plan(team_keys(), [{"name": "monitoring", "state": "regenerated", "read_only": False}])
    assert result["converge"] == [converge("monitoring", "rotate", state="regenerated", read_only=False)]
    assert result["rotated"] == ["monitoring"]
    assert result["updated"] == []


def test_plan_regenerated_missing_key_is_create():
    result = api_key_plan(team_keys(), [{"name": "backup", "state": "regenerated"}])
    assert result["converge"] == [converge("backup", "create", state="regenerated")]
    assert result["created"] == ["backup"]


def test_plan_absent_existing_key_is_delete():
    assert api_key_plan(team_keys(), [{"name": "old-laptop", "state": "absent"}]) == plan(
        converge=[converge("old-laptop", "delete", state="absent")],
        deleted=["old-laptop"],
    )


def test_plan_absent_missing_key_is_unchanged():
    assert api_key_plan(team_keys(), [{"name": "never-made", "state": "absent"}]) == plan(unchanged=["never-made"])


def test_plan_absent_on_the_auth_token_key_is_an_error_naming_team_and_key_without_force():
    declared = [{"name": "ansible", "state": "absent"}, {"name": "old-laptop", "state": "absent"}]
    result = api_key_plan(team_keys(), declared, auth_token=AUTH_TOKEN, team="prod")
    assert result == plan(
        errors=[
            "Team 'prod', key 'ansible': this is the key that the team's auth_token belongs to (id %s); to delete it "
            "would lock the role out of the team. Give the team another admin token in team_api_keys_teams, or keep "
            "this key's state present. Nothing was changed." % SELF_ID,
        ],
        # The key that can be planned still is; the auth_token key is neither converged nor counted.
        converge=[converge("old-laptop", "delete", state="absent")],
        deleted=["old-laptop"],
    )
    assert "force" not in result["errors"][0]


def test_plan_purge_deletes_undeclared_keys_but_not_the_auth_token_key():
    declared = [{"name": "ci-deployer"}, {"name": "monitoring", "read_only": True}]
    assert api_key_plan(team_keys(), declared, purge=True, auth_token=AUTH_TOKEN) == plan(
        purge=[{"id": OLD_ID, "name": "old-laptop", "token_path": None}],
        deleted=["old-laptop"],
        unchanged=["ci-deployer", "monitoring"],
    )


def test_plan_purge_spares_auth_token_key_with_surrounding_whitespace():
    result = api_key_plan(team_keys(), [], purge=True, auth_token="  %s\n" % AUTH_TOKEN)
    assert [key["id"] for key in result["purge"]] == [CI_ID, MON_ID, OLD_ID]


def test_plan_purge_protection_follows_the_token_slice():
    # With another admin token, the "ansible" key is just another undeclared key.
    result = api_key_plan(team_keys(), [{"name": "ci-deployer"}], purge=True, auth_token="other-admin-token-00000")
    assert result["purge"] == [
        {"id": MON_ID, "name": "monitoring", "token_path": None},
        {"id": OLD_ID, "name": "old-laptop", "token_path": None},
        {"id": SELF_ID, "name": "ansible", "token_path": None},
    ]
    assert result["deleted"] == ["monitoring", "old-laptop", "ansible"]


def test_plan_purge_does_not_list_a_declared_absent_key_twice():
    result = api_key_plan(team_keys(), [{"name": "old-laptop", "state": "absent"}, {"name": "ci-deployer"},
                                        {"name": "monitoring"}], purge=True, auth_token=AUTH_TOKEN)
    assert result["purge"] == []
    assert result["deleted"] == ["old-laptop"]
    assert result["converge"] == [converge("old-laptop", "delete", state="absent")]


def test_plan_without_purge_deletes_nothing():
    declared = [{"name": "ci-deployer"}]
    assert api_key_plan(team_keys(), declared, purge=False, auth_token=AUTH_TOKEN) == plan(unchanged=["ci-deployer"])
    assert api_key_plan(team_keys(), declared) == plan(unchanged=["ci-deployer"])


def test_plan_no_declared_keys():
    assert api_key_plan(team_keys(), None) == plan()
    assert api_key_plan(team_keys(), []) == plan()


def test_plan_duplicate_team_key_names_are_an_error_naming_team_key_and_ids_without_force():
    keys = team_keys() + [team_key("tok_ci0000000002", "ci-deployer")]
    result = api_key_plan(keys, [{"name": "ci-deployer", "read_only": True}], team="prod")
    assert result == plan(errors=[
        "Team 'prod', key 'ci-deployer': 2 API keys in the team have this name (ids: %s, tok_ci0000000002), so the "
        "name does not tell which one to manage. Add `id: <one of these ids>` to this key in team_api_keys_teams (and "
        "delete or rename the other keys), then run the role again. Nothing was changed." % CI_ID,
    ])
    assert "force" not in result["errors"][0]


def test_plan_duplicate_names_elsewhere_do_not_matter():
    keys = team_keys() + [team_key("tok_ci0000000002", "ci-deployer")]
    assert api_key_plan(keys, [{"name": "monitoring"}]) == plan(unchanged=["monitoring"])


def test_plan_does_not_modify_its_inputs():
    keys = team_keys()
    declared = [{"name": "monitoring", "read_only": "no"}, {"name": "backup"}, {"name": "ci-deployer"}]
    files = [{"path": "/srv/credentials/prod/monitoring.token", "mode": "0644", "islnk": False}]
    api_key_plan(keys, declared, purge=True, auth_token=AUTH_TOKEN, team="prod", token_dir="/srv/credentials/prod",
                 token_files=files, reissue_missing=True)
    assert keys == team_keys()
    assert declared == [{"name": "monitoring", "read_only": "no"}, {"name": "backup"}, {"name": "ci-deployer"}]
    assert files == [{"path": "/srv/credentials/prod/monitoring.token", "mode": "0644", "islnk": False}]


def test_plan_mixed_outcomes_keep_declaration_order():
    declared = [
        {"name": "backup"},
        {"name": "ci-deployer", "allowed_ips": []},
        {"name": "monitoring", "state": "regenerated"},
        {"name": "old-laptop", "state": "absent"},
        {"name": "ansible"},
    ]
    result = api_key_plan(team_keys(), declared, purge=True, auth_token=AUTH_TOKEN)
    assert [(item["name"], item["action"]) for item in result["converge"]] == [
        ("backup", "create"), ("ci-deployer", "update"), ("monitoring", "rotate"), ("old-laptop", "delete"),
    ]
    assert result["created"] == ["backup"]
    assert result["updated"] == ["ci-deployer"]
    assert result["rotated"] == ["monitoring"]
    assert result["deleted"] == ["old-laptop"]
    assert result["unchanged"] == ["ansible"]
    assert result["purge"] == []


# --------------------------------------------------------------------------- plugin


def test_filter_module_maps_the_three_filters():
    assert FilterModule().filters() == {
        "api_key_plan": api_key_plan,
        "api_key_spec_errors": api_key_spec_errors,
        "api_key_summary": api_key_summary,
    }


def test_importing_the_filter_does_not_import_requests():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = "import sys; import ansible_collections.latitudesh.cloud.plugins.filter.api_keys; print('requests' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"
