# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the role filters' token custody: planning errors, token paths, file checks, summary."""

import pytest

from ansible_collections.latitudesh.cloud.plugins.filter.api_keys import (
    FilterModule,
    api_key_plan,
    api_key_spec_errors,
    api_key_summary,
)
from ansible_collections.latitudesh.cloud.tests.unit.plugins.filter.test_api_keys import AUTH_TOKEN, team_key

IN_USE_SLICE = AUTH_TOKEN[-5:]
TOKEN_DIR = "/srv/credentials/prod"


def found(name, mode="0600", islnk=False, directory=TOKEN_DIR):
    """One entry of ansible.builtin.find's ``files`` (file_type any)."""
    return {"path": "%s/%s" % (directory, name), "mode": mode, "islnk": islnk, "isreg": not islnk}


def team(name="prod", keys=None):
    """A team declaration; the token is the team's own (one token belongs to one team)."""
    return {"name": name, "auth_token": "%s-%s" % (AUTH_TOKEN, name),
            "api_keys": keys if keys is not None else [{"name": "ci"}]}


def key_errors(*keys):
    return api_key_spec_errors([team(keys=list(keys))])


def test_filter_module_maps_the_summary_filter():
    assert FilterModule().filters()["api_key_summary"] is api_key_summary


# --------------------------------------------------------------------------- planning errors


def test_duplicate_names_are_an_error_naming_team_key_ids_and_the_role_fix():
    keys = [team_key("tok_a", "ci"), team_key("tok_b", "ci"), team_key("tok_m", "mon")]
    result = api_key_plan(keys, [{"name": "ci"}, {"name": "mon", "read_only": True}], team="prod")
    assert len(result["errors"]) == 1
    message = result["errors"][0]
    assert message.startswith("Team 'prod', key 'ci': 2 API keys")
    assert "tok_a" in message and "tok_b" in message
    assert "id: <one of these ids>" in message
    assert "team_api_keys_teams" in message
    assert "force" not in message
    assert "Nothing was changed" in message
    # The other keys are still planned; the faulty one is not converged.
    assert [item["name"] for item in result["converge"]] == ["mon"]


@pytest.mark.parametrize("state, verb", [("absent", "delete"), ("regenerated", "rotate")])
def test_the_in_use_key_is_an_error_without_force_advice(state, verb):
    keys = [team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE)]
    result = api_key_plan(keys, [{"name": "admin", "state": state}], auth_token=AUTH_TOKEN, team="prod")
    assert result["converge"] == []
    assert len(result["errors"]) == 1
    message = result["errors"][0]
    assert message.startswith("Team 'prod', key 'admin':")
    assert "tok_admin" in message
    assert "to %s it" % verb in message
    assert "another admin token" in message
    assert "force" not in message


def test_a_missing_id_is_an_error_naming_the_id():
    keys = [team_key("tok_a", "ci")]
    result = api_key_plan(keys, [{"name": "ci", "id": "tok_gone"}], team="prod")
    assert result["converge"] == []
    assert len(result["errors"]) == 1
    message = result["errors"][0]
    assert message.startswith("Team 'prod', key 'ci':")
    assert "tok_gone" in message
    assert "Remove id" in message
    assert "force" not in message


def test_errors_without_a_team_name_the_key():
    keys = [team_key("tok_a", "ci"), team_key("tok_b", "ci")]
    result = api_key_plan(keys, [{"name": "ci"}])
    assert result["errors"][0].startswith("Key 'ci':")


def test_planning_errors_are_returned_not_raised_for_every_key():
    keys = [team_key("tok_a", "ci"), team_key("tok_b", "ci"),
            team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE)]
    result = api_key_plan(keys, [{"name": "ci"}, {"name": "admin", "state": "absent"}, {"name": "x", "id": "tok_x"}],
                          auth_token=AUTH_TOKEN, team="prod")
    assert len(result["errors"]) == 3


# --------------------------------------------------------------------------- id


def test_id_picks_one_of_two_keys_with_the_same_name():
    keys = [team_key("tok_a", "ci", read_only=False), team_key("tok_b", "ci", read_only=True)]
    result = api_key_plan(keys, [{"name": "ci", "id": "tok_b", "read_only": True}], team="prod")
    assert result["errors"] == []
    assert result["unchanged"] == ["ci"]
    assert result["converge"] == []


def test_id_renames_a_key_and_is_passed_to_the_module():
    keys = [team_key("tok_a", "old-name")]
    result = api_key_plan(keys, [{"name": "new-name", "id": "tok_a"}], token_dir=TOKEN_DIR)
    assert result["errors"] == []
    assert result["updated"] == ["new-name"]
    item = result["converge"][0]
    assert item["id"] == "tok_a"
    assert item["action"] == "update"
    assert item["token_path"] == TOKEN_DIR + "/new-name.token"


def test_purge_with_id_deletes_the_other_key_of_that_name_without_touching_the_declared_file():
    keys = [team_key("tok_a", "ci"), team_key("tok_b", "ci")]
    result = api_key_plan(keys, [{"name": "ci", "id": "tok_a"}], purge=True, token_dir=TOKEN_DIR)
    assert result["purge"] == [{"id": "tok_b", "name": "ci", "token_path": None}]
    assert result["deleted"] == ["ci"]


# --------------------------------------------------------------------------- token paths


def test_every_converged_item_gets_its_token_path():
    keys = [team_key("tok_m", "mon"), team_key("tok_o", "old")]
    declared = [{"name": "new"}, {"name": "mon", "state": "regenerated"}, {"name": "old", "state": "absent"}]
    result = api_key_plan(keys, declared, token_dir=TOKEN_DIR)
    paths = dict((item["name"], (item["action"], item["token_path"])) for item in result["converge"])
    assert paths == {
        "new": ("create", TOKEN_DIR + "/new.token"),
        "mon": ("rotate", TOKEN_DIR + "/mon.token"),
        "old": ("delete", TOKEN_DIR + "/old.token"),
    }


def test_without_token_dir_items_have_no_token_path():
    result = api_key_plan([], [{"name": "new"}])
    assert "token_path" not in result["converge"][0]


def test_purge_token_path_only_for_undeclared_valid_file_names():
    keys = [
        team_key("tok_1", "stale"),
        team_key("tok_2", "a/b"),
        team_key("tok_3", ".hidden"),
        team_key("tok_4", "x" * 250),
        team_key("tok_5", "ci"),
        team_key("tok_6", "ci"),
        team_key("tok_7", "..")
    ]
    result = api_key_plan(keys, [{"name": "ci", "id": "tok_5"}], purge=True, token_dir=TOKEN_DIR)
    paths = dict((item["id"], item["token_path"]) for item in result["purge"])
    assert paths == {
        "tok_1": TOKEN_DIR + "/stale.token",
        "tok_2": None,
        "tok_3": None,
        "tok_4": None,
        "tok_6": None,  # its name is declared: ci.token belongs to tok_5
        "tok_7": None,
    }


@pytest.mark.parametrize("purged", [u"deployer", u"DEPLOYER", u"cafe\u0301"])
def test_purge_keeps_a_file_that_a_declared_name_shares_on_macos(purged):
    # On a case- and normalization-insensitive file system, deployer.token is Deployer.token: removing the
    # purged key's file would remove the token just written for the declared key.
    declared = u"caf\u00e9" if purged.startswith("cafe") else u"Deployer"
    keys = [team_key("tok_d", declared), team_key("tok_p", purged)]
    result = api_key_plan(keys, [{"name": declared}], purge=True, token_dir=TOKEN_DIR)
    assert result["purge"] == [{"id": "tok_p", "name": purged, "token_path": None}]


def test_a_declared_name_that_folds_onto_another_key_of_the_team_is_a_planning_error():
    # On macOS Deployer.token is deployer.token: creating "Deployer" would overwrite the live key's token.
    keys = [team_key("tok_live", "deployer")]
    result = api_key_plan(keys, [{"name": "Deployer"}], team="prod", token_dir=TOKEN_DIR)
    assert result["converge"] == []
    assert result["errors"] == [
        "Team 'prod', key 'Deployer': the team's key 'deployer' (id tok_live) differs from it only in letter case, "
        "Unicode form or an invisible joiner or selector, so their token files would be one file on macOS and look "
        "alike elsewhere. Rename one of them first (declare it with its id and another name), or choose another "
        "name. Nothing was changed."]


def test_renaming_a_key_to_its_own_name_in_another_case_is_no_twin():
    keys = [team_key("tok_k", "deployer")]
    result = api_key_plan(keys, [{"name": "Deployer", "id": "tok_k"}], team="prod", token_dir=TOKEN_DIR)
    assert result["errors"] == []
    assert [item["action"] for item in result["converge"]] == ["update"]


def test_purge_keeps_the_file_of_a_name_that_folds_onto_any_other_key_of_the_team():
    # The in-use admin key is never purged; its twin "Admin" is, but Admin.token is admin.token on macOS.
    keys = [team_key("tok_admin", "admin", token_last_slice=AUTH_TOKEN[-5:]), team_key("tok_twin", "Admin")]
    result = api_key_plan(keys, [], purge=True, auth_token=AUTH_TOKEN, token_dir=TOKEN_DIR)
    assert result["purge"] == [{"id": "tok_twin", "name": "Admin", "token_path": None}]


def test_purge_gives_no_token_path_the_api_key_action_would_refuse():
    long_dir = "/" + "/".join(["d" * 250] * 16)
    result = api_key_plan([team_key("tok_s", "k" * 240)], [], purge=True, token_dir=long_dir)
    assert result["purge"] == [{"id": "tok_s", "name": "k" * 240, "token_path": None}]


def test_purge_never_lists_the_in_use_key():
    keys = [team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE), team_key("tok_1", "stale")]
    result = api_key_plan(keys, [], purge=True, auth_token=AUTH_TOKEN, token_dir=TOKEN_DIR)
    assert [item["id"] for item in result["purge"]] == ["tok_1"]


# --------------------------------------------------------------------------- missing token files


def test_existing_key_without_token_file_is_reported_not_rotated_by_default(monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))
    keys = [team_key("tok_c", "ci"), team_key("tok_m", "mon")]
    result = api_key_plan(keys, [{"name": "ci"}, {"name": "mon"}], token_dir=TOKEN_DIR,
                          token_files=[found("mon.token")])
    assert result["missing_tokens"] == ["ci"]
    assert result["unchanged"] == ["ci", "mon"]
    assert result["rotated"] == []
    assert result["converge"] == [], "a key without a token file costs no module call"
    assert warnings == [], "warnings only with warn_missing"


def test_missing_token_file_warning_names_team_key_file_and_fix(monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))
    keys = [team_key("tok_c", "ci"), team_key("tok_m", "mon")]
    result = api_key_plan(keys, [{"name": "ci"}, {"name": "mon"}], team="prod", token_dir=TOKEN_DIR,
                          token_files=[found("mon.token")], warn_missing=True)
    assert result["converge"] == []
    assert len(warnings) == 1, warnings
    for words in ("Team 'prod', key 'ci'", TOKEN_DIR + "/ci.token does not exist", "team_api_keys_reissue_missing_tokens: true"):
        assert words in warnings[0], (words, warnings[0])


def test_existing_key_without_token_file_is_reissued_when_asked():
    keys = [team_key("tok_c", "ci")]
    result = api_key_plan(keys, [{"name": "ci"}], token_dir=TOKEN_DIR, token_files=[], reissue_missing=True)
    assert result["missing_tokens"] == ["ci"]
    assert result["rotated"] == ["ci"]
    assert result["unchanged"] == []
    item = result["converge"][0]
    assert (item["state"], item["action"], item["token_path"]) == ("regenerated", "reissue", TOKEN_DIR + "/ci.token")


def test_the_in_use_key_is_never_reissued():
    keys = [team_key("tok_admin", "admin", token_last_slice=IN_USE_SLICE)]
    result = api_key_plan(keys, [{"name": "admin"}], auth_token=AUTH_TOKEN, token_dir=TOKEN_DIR, token_files=[],
                          reissue_missing=True)
    assert result["missing_tokens"] == ["admin"]
    assert result["rotated"] == []
    assert result["unchanged"] == ["admin"]
    assert result["converge"] == []


def test_a_key_that_needs_an_update_and_has_no_token_file_is_reissued_when_asked():
    # The token file is missing; reissue_missing=true promises a new token in it, whatever else changes.
    keys = [team_key("tok_c", "ci", read_only=False)]
    result = api_key_plan(keys, [{"name": "ci", "read_only": True}], token_dir=TOKEN_DIR, token_files=[],
                          reissue_missing=True)
    assert result["missing_tokens"] == ["ci"]
    assert [(item["name"], item["state"]) for item in result["converge"]] == [("ci", "regenerated")]


@pytest.mark.parametrize("declared, keys, action", [
    ({"name": "ci", "state": "absent"}, [team_key("tok_c", "ci")], "delete"),  # deleted anyway
    ({"name": "ci"}, [], "create"),  # created: its token is written now
    ({"name": "ci", "state": "regenerated"}, [team_key("tok_c", "ci")], "rotate"),  # rotated anyway
])
def test_missing_token_files_that_need_no_word(declared, keys, action):
    result = api_key_plan(keys, [declared], token_dir=TOKEN_DIR, token_files=[], reissue_missing=True)
    assert result["missing_tokens"] == []
    assert [item["action"] for item in result["converge"]] == [action]
    assert [item["state"] for item in result["converge"]] == [declared.get("state", "present")]


def test_without_token_files_missing_files_are_not_judged():
    result = api_key_plan([team_key("tok_c", "ci")], [{"name": "ci"}], token_dir=TOKEN_DIR)
    assert result["missing_tokens"] == []
    assert result["converge"] == []
    assert result["unchanged"] == ["ci"]


# --------------------------------------------------------------------------- token file entries


def test_a_symlink_or_any_mode_counts_as_an_existing_token_file():
    """Modes and symlinks are token_dir's business: the plan only asks whether the file is there."""
    keys = [team_key("tok_%d" % index, name) for index, name in enumerate(["ok", "loose", "link"])]
    files = [found("ok.token", mode="0600"), found("loose.token", mode="0644"),
             found("link.token", mode="0777", islnk=True), found("undeclared.token", mode="0666")]
    declared = [{"name": "ok"}, {"name": "loose"}, {"name": "link"}]
    result = api_key_plan(keys, declared, token_dir=TOKEN_DIR, token_files=files)
    assert result["missing_tokens"] == [] and result["converge"] == []
    assert "fix_modes" not in result and "symlinks" not in result


@pytest.mark.parametrize("entry", [
    dict(found("ci.token"), size=0),  # an empty file
    dict(found("ci.token", mode="0777", islnk=True), size=0),  # token_dir: a symlink that points nowhere
])
def test_an_empty_token_file_or_a_dangling_symlink_counts_as_missing(monkeypatch, entry):
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))
    keys = [team_key("tok_c", "ci")]
    result = api_key_plan(keys, [{"name": "ci"}], team="prod", token_dir=TOKEN_DIR, token_files=[entry],
                          warn_missing=True)
    assert result["missing_tokens"] == ["ci"]
    assert len(warnings) == 1 and TOKEN_DIR + "/ci.token holds no token" in warnings[0]
    reissued = api_key_plan(keys, [{"name": "ci"}], token_dir=TOKEN_DIR, token_files=[entry], reissue_missing=True)
    assert [(item["state"], item["action"]) for item in reissued["converge"]] == [("regenerated", "reissue")]


def test_a_token_file_with_bytes_counts_as_present():
    files = [dict(found("ci.token"), size=37), dict(found("link.token", islnk=True), size=37)]
    keys = [team_key("tok_c", "ci"), team_key("tok_l", "link")]
    result = api_key_plan(keys, [{"name": "ci"}, {"name": "link"}], token_dir=TOKEN_DIR, token_files=files)
    assert result["missing_tokens"] == []


def test_a_key_renamed_by_id_with_the_old_names_file_is_not_missing_a_token(monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))
    keys = [team_key("tok_c", "ci")]
    declared = [{"id": "tok_c", "name": "deployer"}]
    result = api_key_plan(keys, declared, token_dir=TOKEN_DIR, token_files=[found("ci.token")], warn_missing=True,
                          reissue_missing=True)
    assert result["missing_tokens"] == [] and warnings == []
    assert [(item["name"], item["state"], item["action"], item["token_path"]) for item in result["converge"]] == \
        [("deployer", "present", "update", TOKEN_DIR + "/deployer.token")]
    without_old_file = api_key_plan(keys, declared, token_dir=TOKEN_DIR, token_files=[], reissue_missing=True)
    assert without_old_file["missing_tokens"] == ["deployer"]


@pytest.mark.parametrize("entry", [
    dict(found("deployer.token"), size=0),  # an empty file
    dict(found("deployer.token", mode="0777", islnk=True), size=0),  # a symlink that points nowhere
])
def test_a_key_renamed_by_id_onto_a_file_that_holds_no_token_is_missing_a_token(monkeypatch, entry):
    """The api_key task moves the old name's file only where nothing is: the plan must not count on that move."""
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))
    keys = [team_key("tok_c", "ci")]
    declared = [{"id": "tok_c", "name": "deployer"}]
    files = [dict(found("ci.token"), size=37), entry]
    result = api_key_plan(keys, declared, team="prod", token_dir=TOKEN_DIR, token_files=files, warn_missing=True)
    assert result["missing_tokens"] == ["deployer"]
    assert len(warnings) == 1 and TOKEN_DIR + "/deployer.token holds no token" in warnings[0]
    reissued = api_key_plan(keys, declared, token_dir=TOKEN_DIR, token_files=files, reissue_missing=True)
    assert [(item["name"], item["state"], item["action"]) for item in reissued["converge"]] == \
        [("deployer", "regenerated", "reissue")]


def test_find_entries_without_a_path_are_ignored():
    result = api_key_plan([team_key("tok_c", "ci")], [{"name": "ci"}], token_dir=TOKEN_DIR,
                          token_files=[{"mode": "0644"}, "ci.token", None, found("ci.token")])
    assert result["missing_tokens"] == []


# --------------------------------------------------------------------------- summary


def registered(*results):
    return {"results": list(results), "changed": True}


def outcome(name, actions, **extra):
    result = {"item": {"name": name}, "actions": actions, "changed": bool(actions)}
    result.update(extra)
    return result


def test_summary_reports_what_the_tasks_did_not_the_plan():
    plan = {"created": ["c1", "c2"], "updated": [], "rotated": ["r"], "deleted": ["p"], "unchanged": ["same"]}
    converged = registered(
        outcome("c1", ["create"]),
        outcome("c2", []),  # another run created it first
        outcome("r", ["update", "rotate"]),
        outcome("u", ["update"]),
    )
    purged = registered(outcome("p", ["delete"]))
    summary = api_key_summary(plan, converged, purged)
    assert summary == {
        "created": ["c1"], "updated": ["u"], "rotated": ["r"], "deleted": ["p"], "unchanged": ["c2", "same"],
        "failed": [], "too_old": [], "token_age_unknown": [],
    }


def test_summary_lists_failed_and_leaves_out_skipped_items():
    plan = {"unchanged": ["same"]}
    converged = registered(
        outcome("bad", ["create"], failed=True, msg="nothing changed"),
        {"item": {"name": "skipped"}, "skipped": True, "changed": False},
    )
    summary = api_key_summary(plan, converged, {"results": []})
    assert summary["failed"] == ["bad"]
    assert summary["created"] == []
    assert "skipped" not in sum((value for value in summary.values() if isinstance(value, list)), [])
    assert summary["unchanged"] == ["same"]
    assert "note" not in summary


def test_summary_after_a_task_that_did_not_run():
    plan = {"created": ["c1"], "unchanged": ["same"]}
    summary = api_key_summary(plan, {"skipped": True}, None)
    assert summary["created"] == []
    assert summary["unchanged"] == ["same"]


def test_summary_counts_a_checked_key_once():
    plan = {"unchanged": ["ci"]}
    summary = api_key_summary(plan, registered(outcome("ci", [])), registered())
    assert summary["unchanged"] == ["ci"]


def test_summary_in_check_mode_says_it_is_a_prediction():
    summary = api_key_summary({}, registered(outcome("c1", ["create"])), registered(), check_mode=True)
    assert summary["created"] == ["c1"]
    assert "check mode" in summary["note"] and "prediction" in summary["note"]


# --------------------------------------------------------------------------- spec errors: file names


@pytest.mark.parametrize("name, reason", [
    ("a\x00b", "contains a NUL character"),
    ("a\nb", "contains a control character"),
    ("a\tb", "contains a control character"),
    (".", "current or the parent directory"),
    ("..", "current or the parent directory"),
    (".hidden", "starts with '.'"),
    ("x" * 250, "256 bytes"),
    (u"\u00e9" * 150, "300 bytes"),
    (u"\u00e9" * 127, "260 bytes"),
    ("a/b", "contains '/'"),
    (u"ci\u202etxt", "contains U+202E"),
    (u"ci\u2028x", "contains U+2028"),
])
def test_spec_errors_key_names_that_cannot_be_a_token_file(name, reason):
    errors = key_errors({"name": name})
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith("team_api_keys_teams[0]")
    assert ".api_keys[0]" in message
    assert "'prod'" in message  # the team
    assert repr(name if len(name) <= 60 else name[:40] + "...") in message  # the key, escaped
    assert reason in message
    assert "<team>/<name>.token" in message
    # The name is shown escaped: a message never carries a raw NUL, newline, tab or bidirectional control.
    assert not any(ord(char) < 32 or char in u"\u202e\u2028" for char in message)


def test_spec_errors_one_token_declared_for_two_teams_names_both_and_never_the_token():
    teams = [team("prod", [{"name": "a"}]), team("data", [{"name": "b"}]), dict(team("ops", []), auth_token="other")]
    teams[1]["auth_token"] = " %s " % teams[0]["auth_token"]  # the same token, as the modules strip it
    errors = api_key_spec_errors(teams)
    assert len(errors) == 1, errors
    assert errors[0].startswith("team_api_keys_teams[1].auth_token (team 'data') is the same token as "
                                "team_api_keys_teams[0].auth_token (team 'prod')")
    assert "declare that team once" in errors[0]
    assert AUTH_TOKEN not in errors[0] and teams[0]["auth_token"][-5:] not in errors[0]


@pytest.mark.parametrize("name", ["x" * 249, u"\u00e9" * 124 + "x", "ci.deployer", "a..b"])
def test_spec_errors_accept_key_names_up_to_255_bytes_with_the_suffix(name):
    assert key_errors({"name": name}) == []


@pytest.mark.parametrize("label, reason", [
    ("a\x00b", "contains a NUL character"),
    ("a\nb", "contains a control character"),
    (".", "current or the parent directory"),
    ("..", "current or the parent directory"),
    (".hidden", "starts with '.'"),
    ("t" * 256, "256 bytes"),
    (u"\u00e9" * 128, "256 bytes"),
    (u"prod\u2066x", "contains U+2066"),
])
def test_spec_errors_team_names_that_cannot_be_a_directory(label, reason):
    errors = api_key_spec_errors([team(name=label)])
    assert len(errors) == 1
    assert errors[0].startswith("team_api_keys_teams[0].name ")
    assert reason in errors[0]
    assert "token directory" in errors[0]
    assert not any(ord(char) < 32 for char in errors[0])


@pytest.mark.parametrize("label", ["t" * 255, u"\u00e9" * 127 + "t"])
def test_spec_errors_accept_team_names_up_to_255_bytes(label):
    assert api_key_spec_errors([team(name=label)]) == []


def test_spec_errors_long_names_are_cut_in_the_message():
    errors = key_errors({"name": "k" * 250})
    assert "k" * 41 not in errors[0]


def test_spec_errors_name_the_team_and_key_for_file_name_problems():
    errors = api_key_spec_errors([team(name="prod", keys=[{"name": "ok"}]),
                                  team(name="staging", keys=[{"name": "ok"}, {"name": ".."}])])
    assert len(errors) == 1
    assert errors[0].startswith("team_api_keys_teams[1]")
    assert ".api_keys[1]" in errors[0]
    assert "'staging'" in errors[0] and "'..'" in errors[0]


def test_spec_errors_duplicate_id_in_one_team():
    errors = key_errors({"name": "a", "id": "tok_1"}, {"name": "b", "id": "tok_1"})
    assert len(errors) == 1
    assert errors[0].startswith("team_api_keys_teams[0]")
    assert ".api_keys[1]" in errors[0]
    assert "'tok_1' is declared twice" in errors[0]
