# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the token_dir action plugin: a token directory's modes, files and issue record.

The plugin does its work in this process, on real files under ``tmp_path``; it must never run a module.
"""

import json
import os
import stat
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.module_utils.testing import patch_module_args

from ansible_collections.latitudesh.cloud.plugins.action import token_dir as action_module
from ansible_collections.latitudesh.cloud.plugins.modules import token_dir as token_dir_module
from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import LOCK_NAME, MANIFEST_NAME
from ansible_collections.latitudesh.cloud.tests.unit.plugins.action.test_api_key import build_action, mode_of, run

MODULE = "latitudesh.cloud.token_dir"
RECORD = {
    "ci.token": {"id": "tok_x1ZJrdx5qg4LV", "name": "ci", "token_last_slice": "4d063",
                 "issued_at": "2026-12-06T05:00:00+00:00"},
}


@pytest.fixture
def make_action(tmp_path):
    """Build the ActionModule as test_api_key does; ``make_action(args, check_mode=False)``.

    The loader's basedir (the playbook directory) is ``tmp_path / "playbooks"``, which exists with mode 0755.
    Any module run fails the test: the plugin does everything on the controller, in this process.
    """
    basedir = tmp_path / "playbooks"
    basedir.mkdir()
    os.chmod(str(basedir), 0o755)

    def make(args, check_mode=False):
        action = build_action(action_module, MODULE, args, str(basedir), check_mode)
        action._execute_module = MagicMock(side_effect=AssertionError("token_dir must not run a module"))
        action._low_level_execute_command = MagicMock(side_effect=AssertionError("token_dir must not run commands"))
        return action

    return make


def directory(path, mode=0o755):
    path.mkdir(parents=True)
    os.chmod(str(path), mode)
    return path


TOKEN_TEXT = "54ebfcfa2ad7f9fe0d4e081306554174d063"
TOKEN_SIZE = len(TOKEN_TEXT)


def token_file(path, mode=0o644, text=TOKEN_TEXT):
    path.write_text(text)
    os.chmod(str(path), mode)
    return path


def tree(root):
    """Everything under ``root``, with modes and link targets: {relative path: (kind, mode or target)}."""
    found = {}
    for parent, dirs, files in os.walk(str(root)):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                found[os.path.relpath(path, str(root))] = ("link", os.readlink(path))
            else:
                kind = "dir" if os.path.isdir(path) else "file"
                found[os.path.relpath(path, str(root))] = (kind, mode_of(path))
    return found


def write_record(path, tokens=None, text=None):
    if text is None:
        text = json.dumps({"version": 1, "tokens": tokens})
    (path / MANIFEST_NAME).write_text(text)


# --------------------------------------------------------------------------- the directory


def test_a_missing_directory_is_created_0700_with_its_missing_parents(make_action, tmp_path):
    os.chmod(str(tmp_path), 0o755)
    path = tmp_path / "credentials" / "platform" / "team"
    action = make_action(dict(path=str(path)))
    result = run(action)

    assert path.is_dir()
    assert mode_of(path) == 0o700
    assert mode_of(path.parent) == 0o700
    assert mode_of(path.parent.parent) == 0o700
    assert mode_of(tmp_path) == 0o755  # an existing parent is left as it is
    assert result["changed"] is True
    assert result["path"] == str(path)
    assert result["files"] == [] and result["secured"] == [] and result["symlinks"] == []
    assert result["tokens"] == {}
    assert action._execute_module.call_count == 0


def test_an_existing_0755_directory_is_set_to_0700(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o755)
    result = run(make_action(dict(path=str(path))))
    assert mode_of(path) == 0o700
    assert result["changed"] is True


@pytest.mark.parametrize("mode", [0o750, 0o711, 0o500])
def test_any_mode_other_than_0700_is_set_to_0700(make_action, tmp_path, mode):
    path = directory(tmp_path / "credentials", mode)
    result = run(make_action(dict(path=str(path))))
    assert mode_of(path) == 0o700
    assert result["changed"] is True


def test_an_already_private_directory_is_unchanged(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o600)
    before = tree(tmp_path)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert result["changed"] is False
    assert result["secured"] == []
    assert tree(tmp_path) == before


def test_a_second_run_changes_nothing(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o755)
    token_file(path / "ci.token", 0o644)
    args = dict(path=str(path), secure_files=["ci.token", "gone.token"])
    first = run(make_action(args))
    assert first["changed"] is True and first["secured"] == ["ci.token"]
    after_first = tree(tmp_path)

    second = run(make_action(args))
    assert second["changed"] is False
    assert second["secured"] == []
    assert second["files"] == first["files"]
    assert tree(tmp_path) == after_first


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_file_at_path_fails_naming_the_path(make_action, tmp_path, check_mode):
    path = token_file(tmp_path / "credentials", 0o644, text="a file")
    action = make_action(dict(path=str(path)), check_mode=check_mode)
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    message = str(info.value)
    assert "%s exists and is not a directory" % path in message
    assert path.read_text() == "a file"
    assert mode_of(path) == 0o644


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_file_in_place_of_a_parent_fails_naming_that_file(make_action, tmp_path, check_mode):
    # A run cannot create credentials/prod under a file: check mode must not predict success either,
    # and the message must name the file that is in the way (not only say "File exists").
    blocker = token_file(tmp_path / "credentials", 0o644, text="a file")
    path = blocker / "prod"
    action = make_action(dict(path=str(path)), check_mode=check_mode)
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    message = str(info.value)
    assert str(path) in message
    assert "%s exists and is not a directory" % blocker in message
    assert blocker.read_text() == "a file"
    assert mode_of(blocker) == 0o644


# --------------------------------------------------------------------------- path: relative, ~, bad values


def test_a_relative_path_is_relative_to_the_playbook_directory(make_action, tmp_path):
    result = run(make_action(dict(path="credentials/platform")))
    path = tmp_path / "playbooks" / "credentials" / "platform"
    assert result["path"] == str(path)
    assert path.is_dir()
    assert mode_of(path) == 0o700
    assert mode_of(path.parent) == 0o700
    assert mode_of(tmp_path / "playbooks") == 0o755


def test_the_returned_path_is_normalised(make_action, tmp_path):
    result = run(make_action(dict(path="credentials/../tokens//platform/")))
    path = tmp_path / "playbooks" / "tokens" / "platform"
    assert result["path"] == str(path)
    assert path.is_dir()
    assert not (tmp_path / "playbooks" / "credentials").exists()


def test_tilde_is_the_home_directory(make_action, tmp_path, monkeypatch):
    home = directory(tmp_path / "home", 0o755)
    monkeypatch.setenv("HOME", str(home))
    result = run(make_action(dict(path="~/credentials")))
    assert result["path"] == str(home / "credentials")
    assert mode_of(home / "credentials") == 0o700
    assert not (tmp_path / "playbooks" / "~").exists()


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_path_fails_and_leaves_the_playbook_directory_alone(make_action, tmp_path, value):
    # "path: {{ some_dir }}" with an empty variable must not make the playbook directory 0700.
    (tmp_path / "playbooks" / "site.yml").write_text("---\n")
    before = tree(tmp_path)
    with pytest.raises(AnsibleActionFail) as info:
        run(make_action(dict(path=value)))
    assert "path" in str(info.value)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_nul_in_path_fails_with_a_message_not_a_traceback(make_action, tmp_path, check_mode):
    before = tree(tmp_path)
    with pytest.raises(AnsibleActionFail) as info:
        run(make_action(dict(path=str(tmp_path / "cred\x00entials")), check_mode=check_mode))
    assert "path" in str(info.value)
    assert "NUL" in str(info.value)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("char, shown", [(u"\u202e", "U+202E"), (u"\u2028", "U+2028"), (u"\u2067", "U+2067"),
                                         ("\n", "control character"), (u"\x85", "control character")])
def test_a_path_that_displays_as_something_else_fails_before_anything_is_made(make_action, tmp_path, char, shown):
    """As token_path does: a line separator, bidirectional control or control character in the directory."""
    before = tree(tmp_path)
    with pytest.raises(AnsibleActionFail) as info:
        run(make_action(dict(path=str(tmp_path / ("cred%sentials" % char) / "prod"))))
    assert str(info.value).startswith("path contains ") and shown in str(info.value)
    assert char not in str(info.value)
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------- secure_files


def test_a_0644_token_file_is_set_to_0600_and_reported(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o644)
    token_file(path / "private.token", 0o600)
    token_file(path / "other.token", 0o640)  # not named: left as it is
    result = run(make_action(dict(path=str(path), secure_files=["ci.token", "private.token"])))
    assert mode_of(path / "ci.token") == 0o600
    assert mode_of(path / "private.token") == 0o600
    assert mode_of(path / "other.token") == 0o640
    assert result["secured"] == ["ci.token"]
    assert result["symlinks"] == []
    assert result["changed"] is True  # the directory was private already: the file made the change
    modes = dict((os.path.basename(entry["path"]), entry["mode"]) for entry in result["files"])
    assert modes == {"ci.token": "0600", "other.token": "0640", "private.token": "0600"}


@pytest.mark.parametrize("mode", [0o666, 0o400, 0o700, 0o604])
def test_any_token_file_mode_other_than_0600_is_set_to_0600(make_action, tmp_path, mode):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", mode)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert mode_of(path / "ci.token") == 0o600
    assert result["secured"] == ["ci.token"]


def test_missing_secure_files_are_ignored(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    result = run(make_action(dict(path=str(path), secure_files=["gone.token", "also-gone.token"])))
    assert result["changed"] is False
    assert result["secured"] == [] and result["symlinks"] == [] and result["files"] == []
    assert os.listdir(str(path)) == []


def test_secure_files_in_a_new_directory_are_ignored(make_action, tmp_path):
    path = tmp_path / "credentials"
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert result["changed"] is True
    assert result["secured"] == []
    assert os.listdir(str(path)) == []


def test_a_symlink_is_reported_and_its_target_left_alone(make_action, tmp_path):
    target = token_file(tmp_path / "elsewhere.txt", 0o644, text="keep me")
    path = directory(tmp_path / "credentials", 0o700)
    (path / "ci.token").symlink_to(target)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert mode_of(target) == 0o644
    assert target.read_text() == "keep me"
    assert (path / "ci.token").is_symlink()
    assert result["symlinks"] == ["ci.token"]
    assert result["secured"] == []
    assert result["changed"] is False
    assert result["files"] == [{"path": str(path / "ci.token"), "mode": "%04o" % mode_of(path / "ci.token"),
                                "islnk": True, "isreg": False, "size": len("keep me")}]


def test_a_dangling_symlink_is_reported(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    (path / "ci.token").symlink_to(tmp_path / "nowhere")
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert result["symlinks"] == ["ci.token"]
    assert result["secured"] == []
    assert not (tmp_path / "nowhere").exists()
    assert [(entry["islnk"], entry["size"]) for entry in result["files"]] == [(True, 0)]


def test_a_directory_named_in_secure_files_is_left_alone(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    directory(path / "ci.token", 0o755)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert mode_of(path / "ci.token") == 0o755
    assert result["secured"] == [] and result["symlinks"] == []
    assert result["changed"] is False


@pytest.mark.parametrize("entry, problem", [
    ("a/b", "contains '/'"),
    ("../ci.token", "contains '/'"),
    ("..", "parent directory"),
    (".", "current or the parent directory"),
    ("ci\x00.token", "NUL"),
    ("ci\n.token", "control character"),
    ("", "is empty"),
    ("k" * 256, "256 bytes"),
])
def test_bad_secure_files_entries_fail_before_anything_is_touched(make_action, tmp_path, entry, problem):
    path = directory(tmp_path / "credentials", 0o755)
    token_file(path / "ci.token", 0o644)
    before = tree(tmp_path)
    # The good name comes first: a plugin that checked names one by one, as it went, would have changed it.
    with pytest.raises(AnsibleActionFail) as info:
        run(make_action(dict(path=str(path), secure_files=["ci.token", entry])))
    message = str(info.value)
    assert "secure_files" in message
    assert problem in message
    assert repr(entry) in message
    assert tree(tmp_path) == before

    missing = tmp_path / "new" / "team"
    with pytest.raises(AnsibleActionFail):
        run(make_action(dict(path=str(missing), secure_files=[entry])))
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------- files and the issue record


def test_files_lists_only_token_files_sorted_by_path_with_find_fields(make_action, tmp_path, monkeypatch):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "zeta.token", 0o600)
    token_file(path / "alpha.token", 0o640)
    token_file(path / "mid.token", 0o644)
    token_file(path / "notes.txt", 0o644)
    token_file(path / "ci.token.bak", 0o644)
    token_file(path / "token", 0o644)
    token_file(path / LOCK_NAME, 0o600, text="")
    write_record(path, RECORD)
    (path / "link.token").symlink_to(path / "mid.token")
    # Whatever order the file system lists them in, the result is sorted: make it list them backwards.
    real_listdir = os.listdir
    monkeypatch.setattr(action_module.os, "listdir", lambda where: sorted(real_listdir(where), reverse=True))
    result = run(make_action(dict(path=str(path))))
    monkeypatch.undo()

    link_mode = "%04o" % mode_of(path / "link.token")
    assert result["files"] == [
        {"path": str(path / "alpha.token"), "mode": "0640", "islnk": False, "isreg": True, "size": TOKEN_SIZE},
        {"path": str(path / "link.token"), "mode": link_mode, "islnk": True, "isreg": False, "size": TOKEN_SIZE},
        {"path": str(path / "mid.token"), "mode": "0644", "islnk": False, "isreg": True, "size": TOKEN_SIZE},
        {"path": str(path / "zeta.token"), "mode": "0600", "islnk": False, "isreg": True, "size": TOKEN_SIZE},
    ]
    assert result["changed"] is False  # listing changes nothing


def test_files_report_the_modes_after_the_task(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o644)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"])))
    assert result["files"] == [{"path": str(path / "ci.token"), "mode": "0600", "islnk": False, "isreg": True,
                                "size": TOKEN_SIZE}]


def test_a_directory_named_like_a_token_file_is_listed_as_not_regular(make_action, tmp_path):
    # As ansible.builtin.find with file_type any, which the role used before, listed it.
    path = directory(tmp_path / "credentials", 0o700)
    directory(path / "ci.token", 0o750)
    result = run(make_action(dict(path=str(path))))
    assert result["files"] == [{"path": str(path / "ci.token"), "mode": "0750", "islnk": False, "isreg": False,
                                "size": 0}]


def test_the_issue_record_is_returned_as_tokens(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    write_record(path, RECORD)
    result = run(make_action(dict(path=str(path))))
    assert result["tokens"] == RECORD
    assert result["files"] == []  # the record is not a token file


@pytest.mark.parametrize("text", [
    "{not json",
    "",
    "[1, 2]",
    json.dumps({"version": 1, "tokens": ["ci.token"]}),
    json.dumps({"version": 1}),
])
def test_a_corrupt_issue_record_gives_empty_tokens(make_action, tmp_path, text):
    path = directory(tmp_path / "credentials", 0o700)
    write_record(path, text=text)
    result = run(make_action(dict(path=str(path))))
    assert result["tokens"] == {}
    assert (path / MANIFEST_NAME).read_text() == text  # reported, never rewritten


def test_a_missing_issue_record_gives_empty_tokens(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o600)
    result = run(make_action(dict(path=str(path))))
    assert result["tokens"] == {}
    assert not (path / MANIFEST_NAME).exists()


# --------------------------------------------------------------------------- check mode


def test_check_mode_creates_nothing_for_a_missing_directory(make_action, tmp_path):
    before = tree(tmp_path)
    path = tmp_path / "credentials" / "platform"
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"]), check_mode=True))
    assert tree(tmp_path) == before
    assert result["changed"] is True
    assert result["path"] == str(path)
    assert result["files"] == [] and result["secured"] == [] and result["symlinks"] == []
    assert result["tokens"] == {}


def test_check_mode_changes_no_mode_and_reports_what_it_would_change(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o755)
    token_file(path / "ci.token", 0o644)
    token_file(path / "ok.token", 0o600)
    (path / "link.token").symlink_to(path / "ci.token")
    write_record(path, RECORD)
    before = tree(tmp_path)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token", "ok.token", "link.token", "gone.token"]),
                             check_mode=True))
    assert tree(tmp_path) == before
    assert result["changed"] is True
    assert result["secured"] == ["ci.token"]
    assert result["symlinks"] == ["link.token"]
    assert result["tokens"] == RECORD
    modes = dict((os.path.basename(entry["path"]), entry["mode"]) for entry in result["files"])
    assert modes["ci.token"] == "0644"  # as it is, in check mode
    assert modes["ok.token"] == "0600"


def test_check_mode_reports_a_file_it_would_secure_in_a_private_directory(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o644)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"]), check_mode=True))
    assert result["changed"] is True
    assert result["secured"] == ["ci.token"]
    assert mode_of(path / "ci.token") == 0o644


def test_check_mode_reports_a_0755_directory_and_keeps_its_mode(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o755)
    result = run(make_action(dict(path=str(path)), check_mode=True))
    assert result["changed"] is True
    assert mode_of(path) == 0o755


def test_check_mode_on_a_private_directory_reports_no_change(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o600)
    result = run(make_action(dict(path=str(path), secure_files=["ci.token"]), check_mode=True))
    assert result["changed"] is False
    assert result["secured"] == []


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("args, words", [
    ({}, ["missing required arguments: path"]),
    ({"secure_files": ["ci.token"]}, ["missing required arguments: path"]),
    ({"path": "credentials", "secure_files": {"ci.token": True}}, ["secure_files", "list"]),
    ({"path": "credentials", "mode": "0700"}, ["Unsupported parameters", "mode"]),
])
def test_wrong_arguments_fail_in_the_argument_check(make_action, tmp_path, args, words):
    before = tree(tmp_path)
    with pytest.raises(AnsibleActionFail) as info:
        run(make_action(args))
    for word in words:
        assert word in str(info.value)
    assert tree(tmp_path) == before


def test_a_single_secure_files_string_is_one_name(make_action, tmp_path):
    path = directory(tmp_path / "credentials", 0o700)
    token_file(path / "ci.token", 0o644)
    result = run(make_action(dict(path=str(path), secure_files="ci.token")))
    assert result["secured"] == ["ci.token"]
    assert mode_of(path / "ci.token") == 0o600


# --------------------------------------------------------------------------- the module without its action plugin


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_module_alone_fails_naming_the_action_plugin(capsys, tmp_path, check_mode):
    path = tmp_path / "credentials"
    module_args = dict(path=str(path), secure_files=["ci.token"])
    if check_mode:
        module_args["_ansible_check_mode"] = True
    with patch_module_args(module_args):
        with pytest.raises(SystemExit) as info:
            token_dir_module.main()
    assert info.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert "latitudesh.cloud.token_dir" in result["msg"]
    assert "action plugin" in result["msg"]
    assert "controller" in result["msg"]
    assert not path.exists()


# --------------------------------------------------------------------------- shared directories are never taken over


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_sticky_shared_directory_is_refused_and_left_as_it_is(make_action, tmp_path, check_mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    with pytest.raises(AnsibleActionFail) as excinfo:
        run(make_action(dict(path=str(shared)), check_mode=check_mode))
    assert str(shared) in str(excinfo.value) and "shared directory" in str(excinfo.value)
    assert stat.S_IMODE(os.stat(str(shared)).st_mode) == 0o1777


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("content", ["file", "directory"])
def test_a_directory_used_for_other_things_is_refused_and_left_as_it_is(make_action, tmp_path, check_mode, content):
    # token_dir: /etc (or /srv) as root would have been set to 0700, locking out whatever uses it.
    used = directory(tmp_path / "etc", 0o755)
    if content == "file":
        (used / "hosts").write_text("127.0.0.1 localhost\n")
    else:
        (used / "www" / "html").mkdir(parents=True)
    token_file(used / "ci.token", 0o600)
    with pytest.raises(AnsibleActionFail) as excinfo:
        run(make_action(dict(path=str(used)), check_mode=check_mode))
    message = str(excinfo.value)
    assert "%s holds what the collection did not write (%s)" % (used, "hosts" if content == "file" else "www") in message
    assert os.path.join(str(used), "latitudesh-credentials") in message
    assert mode_of(used) == 0o755


def test_a_token_directory_with_team_directories_and_records_is_made_private(make_action, tmp_path):
    top = directory(tmp_path / "credentials", 0o777)
    team = directory(top / "platform", 0o700)
    write_record(team, {})
    directory(top / "new-team", 0o700)  # made by an earlier run, no key yet
    (top / ".latitudesh.lock").write_text("")
    result = run(make_action(dict(path=str(top))))
    assert mode_of(top) == 0o700 and result["changed"] is True


def test_a_token_directory_with_a_gitignore_recorded_files_and_record_less_teams_is_made_private(make_action, tmp_path):
    top = directory(tmp_path / "creds", 0o755)  # a fresh git checkout
    (top / ".gitignore").write_text("*\n")
    write_record(top, {"ci.secret": {"id": "tok_a"}})
    token_file(top / "ci.secret", 0o600)  # a token_path the collection wrote under another suffix
    older = directory(top / "older-team", 0o700)  # written before the collection kept a record
    token_file(older / "deployer.token", 0o600)
    result = run(make_action(dict(path=str(top))))
    assert mode_of(top) == 0o700 and result["changed"] is True


def test_a_team_directory_does_not_change_what_counts_as_ours_beside_it(make_action, tmp_path):
    # Entries after a team directory were judged by that team directory's record.
    top = directory(tmp_path / "creds", 0o755)
    write_record(top, {"zz-key": {"id": "tok_a"}})
    token_file(top / "zz-key", 0o600)
    directory(top / "alpha", 0o700)
    assert mode_of(top) == 0o755
    run(make_action(dict(path=str(top))))
    assert mode_of(top) == 0o700
    other = directory(tmp_path / "other", 0o755)
    team = directory(other / "alpha", 0o700)
    write_record(team, {"notes.txt": {"id": "tok_b"}})
    (other / "notes.txt").write_text("not a token")
    with pytest.raises(AnsibleActionFail) as excinfo:
        run(make_action(dict(path=str(other))))
    assert "(notes.txt)" in str(excinfo.value) and mode_of(other) == 0o755


def test_a_private_directory_with_the_setgid_bit_is_made_0700(make_action, tmp_path):
    # mkdir -m 700 under a setgid parent gives drwx--S---: no group access, so nothing is taken from anyone.
    path = directory(tmp_path / "tokens", 0o700)
    os.chmod(str(path), 0o2700)
    result = run(make_action(dict(path=str(path))))
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o700 and result["changed"] is True


def test_a_setgid_group_directory_is_refused_and_left_as_it_is(make_action, tmp_path):
    shared = directory(tmp_path / "mail", 0o755)
    os.chmod(str(shared), 0o2775)  # as /var/mail
    with pytest.raises(AnsibleActionFail) as excinfo:
        run(make_action(dict(path=str(shared))))
    assert "setgid" in str(excinfo.value) and "shared directory" in str(excinfo.value)
    assert stat.S_IMODE(os.stat(str(shared)).st_mode) == 0o2775


def test_a_directory_of_another_user_is_refused_and_left_as_it_is(make_action, tmp_path):
    other = tmp_path / "someone-else"
    other.mkdir()
    os.chmod(str(other), 0o755)
    os.chown(str(other), 65534, 65534)
    with pytest.raises(AnsibleActionFail) as excinfo:
        run(make_action(dict(path=str(other))))
    assert "owned by uid 65534" in str(excinfo.value)
    assert stat.S_IMODE(os.stat(str(other)).st_mode) == 0o755
