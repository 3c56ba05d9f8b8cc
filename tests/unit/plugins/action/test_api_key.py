# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the api_key action plugin: custody of the new token on the controller.

The module is not run: ``_execute_module`` is replaced by a script of module results, and each
test checks what the plugin did with them (files, lock, undo request, result, messages).
"""

import errno
import functools
import json
import os
import signal
import stat
import subprocess
import sys
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted
from ansible.playbook.play_context import PlayContext

from ansible_collections.latitudesh.cloud.plugins.action import api_key as action_module
from ansible_collections.latitudesh.cloud.plugins.plugin_utils import _token_store
from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import (
    LOCK_NAME,
    MANIFEST_NAME,
    DirectoryLock,
    TokenStoreError,
)

TOKEN = "54ebfcfa2ad7f9fe0d4e081306554174d063"
OLD_TOKEN = "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld"
AUTH_TOKEN = "5ec2e7a11ce0b0b5ec2e7a11ce0b0b0e1f2a"
CONNECTION = dict(auth_token=AUTH_TOKEN, api_url="http://127.0.0.1:8999", api_timeout=5, api_retries=0)
MODULE = "latitudesh.cloud.api_key"


def api_key(key_id="tok_new0000000001", name="ci", last="d063"):
    return {"id": key_id, "name": name, "read_only": False, "allowed_ips": [], "token_last_slice": last}


def created(**overrides):
    result = dict(changed=True, api_key=api_key(), actions=["create"], token=TOKEN)
    result.update(overrides)
    return result


def rotated(**overrides):
    result = dict(changed=True, api_key=api_key(key_id="tok_old0000000001"), actions=["rotate"], token=TOKEN)
    result.update(overrides)
    return result


def unchanged(**overrides):
    result = dict(changed=False, api_key=api_key(key_id="tok_old0000000001"), actions=[])
    result.update(overrides)
    return result


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def all_bytes_under(root):
    """Every file under ``root`` (lock, manifest, token files, leftovers) as {relative path: content}."""
    found = {}
    for directory, _dirs, files in os.walk(str(root)):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                with open(path, "rb") as stream:
                    found[os.path.relpath(path, str(root))] = stream.read()
    return found


def build_action(plugin, module_name, args, basedir, check_mode=False):
    """An ActionModule of ``plugin`` for a task of ``module_name``, as ansible-core's own unit tests build one."""
    task = MagicMock()
    task.action = module_name
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = False
    loader = MagicMock()
    loader.get_basedir.return_value = basedir
    return plugin.ActionModule(task=task, connection=MagicMock(), play_context=PlayContext(), loader=loader,
                               templar=MagicMock(), shared_loader_obj=None)


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the plugin shows on the display (an action plugin's warnings are not in its result)."""
    shown = []
    monkeypatch.setattr(action_module.display, "warning", lambda message, *args, **kwargs: shown.append(message))
    return shown


@pytest.fixture
def make_action(tmp_path, warnings):
    """Build the ActionModule as ansible-core's action plugin unit tests do, with a scripted module.

    ``make_action(args, results, check_mode=False)`` returns the plugin; ``results`` are the module
    results returned by successive ``_execute_module`` calls (or exceptions raised by them).
    """
    def make(args, results=(), check_mode=False):
        action = build_action(action_module, MODULE, args, str(tmp_path / "playbooks"), check_mode)
        script = list(results)

        def execute_module(module_name=None, module_args=None, task_vars=None, **kwargs):
            assert module_name == MODULE
            outcome = script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return dict(outcome)

        action._execute_module = MagicMock(side_effect=execute_module)
        return action

    return make


@pytest.fixture
def short_lock_wait(monkeypatch):
    """Make the plugin's directory lock give up after 0.3 s instead of minutes."""
    monkeypatch.setattr(action_module, "DirectoryLock", functools.partial(DirectoryLock, wait=0.3))


def run(action):
    return action.run(task_vars={"inventory_hostname": "localhost"})


def module_args_of(action, call=0):
    return action._execute_module.call_args_list[call][1]["module_args"]


# --------------------------------------------------------------------------- without token_path


def test_without_token_path_the_module_result_is_passed_through(make_action, tmp_path):
    action = make_action(dict(CONNECTION, name="ci"), [created()])
    result = run(action)
    assert result["token"] == TOKEN
    assert result["api_key"]["id"] == "tok_new0000000001"
    assert "token_path" not in result
    assert module_args_of(action) == dict(CONNECTION, name="ci")
    assert all_bytes_under(tmp_path) == {}


def test_vault_password_without_token_path_fails_before_the_module(make_action):
    action = make_action(dict(CONNECTION, name="ci", token_vault_password="secret"), [created()])
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    assert "token_vault_password needs token_path" in str(info.value)
    assert action._execute_module.call_count == 0


# --------------------------------------------------------------------------- writing the token


def test_created_token_is_written_0600_and_left_out_of_the_result(make_action, tmp_path):
    path = tmp_path / "credentials" / "prod" / "ci.token"
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created()])
    result = run(action)

    assert path.read_bytes() == TOKEN.encode()
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert mode_of(path.parent.parent) == 0o700
    assert result["token_path"] == str(path)
    assert result["token_written"] is True
    assert result["changed"] is True
    assert "token" not in result
    assert TOKEN not in json.dumps(result)
    # The module never sees the controller-side options.
    assert module_args_of(action) == dict(CONNECTION, name="ci")
    assert action._execute_module.call_count == 1
    # The issue record names the key, never the token.
    manifest = json.loads((path.parent / MANIFEST_NAME).read_text())
    entry = manifest["tokens"]["ci.token"]
    assert entry["id"] == "tok_new0000000001" and entry["name"] == "ci" and entry["token_last_slice"] == "d063"
    assert TOKEN not in (path.parent / MANIFEST_NAME).read_text()
    # Nothing else is left in the directory (no probe, no temporary file).
    assert sorted(os.listdir(str(path.parent))) == sorted([LOCK_NAME, MANIFEST_NAME, "ci.token"])


def test_rotated_token_replaces_the_old_file(make_action, tmp_path):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    os.chmod(str(path), 0o644)
    result = run(make_action(dict(CONNECTION, name="ci", state="regenerated", token_path=str(path)), [rotated()]))
    assert path.read_text() == TOKEN
    assert mode_of(path) == 0o600
    assert result["token_written"] is True
    assert TOKEN not in json.dumps(result)


def test_a_symlink_at_token_path_is_replaced_not_written_through(make_action, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    path = tmp_path / "ci.token"
    path.symlink_to(target)
    run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created()]))
    assert not path.is_symlink()
    assert path.read_text() == TOKEN
    assert target.read_text() == "keep me"


def test_relative_token_path_is_relative_to_the_playbook_directory(make_action, tmp_path):
    result = run(make_action(dict(CONNECTION, name="ci", token_path="credentials/ci.token"), [created()]))
    path = tmp_path / "playbooks" / "credentials" / "ci.token"
    assert result["token_path"] == str(path)
    assert path.read_text() == TOKEN


def test_vault_password_writes_a_vault_document_that_decrypts_to_the_token(make_action, tmp_path, monkeypatch):
    written = []
    real_write = action_module.write_token_file

    def spy(path, data):
        written.append(data)
        return real_write(path, data)

    monkeypatch.setattr(action_module, "write_token_file", spy)
    path = tmp_path / "ci.token"
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path), token_vault_password="s3cret pw"),
                         [created()])
    result = run(action)

    data = path.read_bytes()
    assert is_encrypted(data)
    assert data.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    vault = VaultLib([("default", VaultSecret(b"s3cret pw"))])
    assert vault.decrypt(data) == TOKEN.encode()
    # Never plaintext on disk, not even in the temporary file: only the Vault document is handed to the writer.
    assert len(written) == 1 and is_encrypted(written[0])
    for content in all_bytes_under(tmp_path).values():
        assert TOKEN.encode() not in content
    assert "s3cret pw" not in json.dumps(result) and TOKEN not in json.dumps(result)
    assert "token_vault_password" not in module_args_of(action)


@pytest.mark.parametrize("password", ["", 42])
def test_vault_password_must_be_a_non_empty_string(make_action, tmp_path, password):
    action = make_action(dict(CONNECTION, name="ci", token_path=str(tmp_path / "ci.token"),
                              token_vault_password=password), [created()])
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    assert "token_vault_password must be a non-empty string" in str(info.value)
    assert action._execute_module.call_count == 0


# --------------------------------------------------------------------------- refused before any request


@pytest.mark.parametrize("token_path, reason", [
    ("/tmp/latitudesh-unit/a\x00b.token", "NUL"),
    ("/tmp/latitudesh-unit/a\nb.token", "control character"),
    ("/tmp/latitudesh-unit/" + "k" * 250 + ".token", "256 bytes"),
    (u"/tmp/latitudesh-unit/" + u"\u00e9" * 150 + u".token", "306 bytes"),
    ("/tmp/latitudesh-unit/", "ends with '/'"),
    ("/tmp/latitudesh-unit/..", "names a directory"),
    ("", "non-empty"),
])
def test_path_problems_fail_before_the_module_runs(make_action, token_path, reason):
    action = make_action(dict(CONNECTION, name="ci", token_path=token_path), [created()])
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    message = str(info.value)
    assert reason in message
    assert "Nothing was sent to the API" in message
    assert action._execute_module.call_count == 0
    assert not os.path.lexists("/tmp/latitudesh-unit")


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_file_where_the_directory_should_be_fails_before_the_module_runs(make_action, tmp_path, check_mode):
    (tmp_path / "credentials").write_text("a file")
    path = tmp_path / "credentials" / "prod" / "ci.token"
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created()], check_mode=check_mode)
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    assert str(path) in str(info.value)
    assert "is not a directory" in str(info.value)
    assert action._execute_module.call_count == 0
    assert (tmp_path / "credentials").read_text() == "a file"


def test_a_directory_as_token_path_fails_before_the_module_runs(make_action, tmp_path):
    action = make_action(dict(CONNECTION, name="ci", token_path=str(tmp_path)), [created()])
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    assert "is a directory" in str(info.value)
    assert action._execute_module.call_count == 0


def test_an_unwritable_destination_fails_before_the_module_runs(make_action, tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_token_store.os, "fsync", full_disk)
    action = make_action(dict(CONNECTION, name="ci", token_path=str(tmp_path / "prod" / "ci.token")), [created()])
    with pytest.raises(AnsibleActionFail) as info:
        run(action)
    monkeypatch.undo()
    assert "No space left on device" in str(info.value)
    assert action._execute_module.call_count == 0


# --------------------------------------------------------------------------- check mode


def test_check_mode_creates_nothing_and_runs_the_module_once(make_action, tmp_path, warnings):
    path = tmp_path / "credentials" / "prod" / "ci.token"
    prediction = dict(changed=True, api_key={"id": None, "name": "ci"}, actions=["create"])
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)), [prediction], check_mode=True)
    result = run(action)
    assert action._execute_module.call_count == 1
    assert os.listdir(str(tmp_path)) == []
    assert result["token_path"] == str(path)
    assert result["token_written"] is False
    assert result["changed"] is True
    assert warnings == [] and "warnings" not in result


def test_check_mode_predicted_rotate_of_a_key_without_file_does_not_ask_to_rotate(make_action, tmp_path, warnings):
    # The task is about to rotate the key: telling the user to rotate it is noise.
    path = tmp_path / "ci.token"
    prediction = dict(changed=True, api_key=api_key(key_id="tok_old0000000001"), actions=["rotate"])
    action = make_action(dict(CONNECTION, name="ci", state="regenerated", token_path=str(path)), [prediction],
                         check_mode=True)
    result = run(action)
    assert warnings == [] and "warnings" not in result


def test_check_mode_absent_reports_the_file_it_would_remove_and_keeps_it(make_action, tmp_path):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    prediction = dict(changed=True, api_key={}, actions=["delete"], deleted_id="tok_ci1")
    result = run(make_action(dict(CONNECTION, name="ci", state="absent", token_path=str(path)), [prediction],
                             check_mode=True))
    assert path.read_text() == OLD_TOKEN
    assert result["token_removed"] is True


# --------------------------------------------------------------------------- a write that fails


def fill_disk(monkeypatch):
    """From now on every atomic write in the token store fails with ENOSPC."""
    def no_space(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_token_store, "_write_atomic", no_space)


@pytest.fixture
def disk_full(monkeypatch):
    """Every atomic write in the token store fails with ENOSPC (after the destination check)."""
    fill_disk(monkeypatch)


def test_write_failing_after_a_create_deletes_the_key_again(make_action, tmp_path, disk_full):
    path = tmp_path / "ci.token"
    undo_ok = dict(changed=True, api_key={}, actions=["delete"])
    action = make_action(dict(CONNECTION, name="ci", read_only=True, allowed_ips=["10.0.0.0/8"],
                              token_path=str(path)), [created(), undo_ok])
    result = run(action)

    assert action._execute_module.call_count == 2
    assert module_args_of(action, 1) == dict(CONNECTION, id="tok_new0000000001", state="absent", force=True)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["token_written"] is False
    assert "nothing changed" in result["msg"]
    assert "tok_new0000000001" in result["msg"]
    assert str(path) in result["msg"]
    assert "No space left on device" in result["msg"]
    assert TOKEN not in json.dumps(result)
    assert not os.path.lexists(str(path))


def test_write_and_undo_both_failing_names_the_key_and_what_to_do(make_action, tmp_path, disk_full):
    path = tmp_path / "ci.token"
    undo_failed = dict(failed=True, changed=False, msg="The API answered 503 Service Unavailable.")
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created(), undo_failed])
    result = run(action)

    assert action._execute_module.call_count == 2
    assert result["failed"] is True
    assert result["changed"] is True
    message = result["msg"]
    assert "id tok_new0000000001" in message
    assert "503 Service Unavailable" in message
    assert "id=tok_new0000000001 and state=absent" in message
    assert "state=regenerated and id=tok_new0000000001" in message
    assert TOKEN not in json.dumps(result)


def test_write_failing_after_a_rotate_says_the_old_token_is_gone(make_action, tmp_path, disk_full):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    action = make_action(dict(CONNECTION, name="ci", state="regenerated", token_path=str(path)), [rotated()])
    result = run(action)

    assert action._execute_module.call_count == 1  # a rotate cannot be undone: no second request
    assert result["failed"] is True
    assert result["changed"] is True
    message = result["msg"]
    assert "was rotated" in message
    assert "old token no longer works" in message
    assert "state=regenerated" in message
    assert "tok_old0000000001" in message
    assert str(path) in message
    assert TOKEN not in json.dumps(result)
    # The file no longer holds a token that looks valid but is not.
    assert not os.path.lexists(str(path))
    assert "old token file was removed" in message


def test_write_failing_with_a_real_enospc_in_rename_leaves_no_temporary_file(make_action, tmp_path, monkeypatch):
    path = tmp_path / "ci.token"
    undo_ok = dict(changed=True, api_key={}, actions=["delete"])
    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created(), undo_ok])
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst) == str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(_token_store.os, "replace", replace)
    result = run(action)
    monkeypatch.undo()
    assert result["failed"] is True and result["changed"] is False
    assert [name for name in os.listdir(str(tmp_path)) if name.endswith(".tmp")] == []
    for content in all_bytes_under(tmp_path).values():
        assert TOKEN.encode() not in content


# --------------------------------------------------------------------------- delete and missing files


def test_absent_removes_the_token_file_and_forgets_it(make_action, tmp_path):
    path = tmp_path / "ci.token"
    run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created()]))
    assert "ci.token" in json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]

    deleted_id = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]["ci.token"]["id"]
    deleted = dict(changed=True, api_key={}, actions=["delete"], deleted_id=deleted_id)
    result = run(make_action(dict(CONNECTION, name="ci", state="absent", token_path=str(path)), [deleted]))
    assert not os.path.lexists(str(path))
    assert result["token_removed"] is True
    assert result["changed"] is True
    assert "ci.token" not in json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]


def test_absent_of_a_key_already_gone_removes_the_file_the_record_ties_to_its_id(make_action, tmp_path):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    _token_store.update_manifest(str(tmp_path), "ci.token", {"id": "tok_gone1", "name": "ci"})
    gone = dict(changed=False, api_key={}, actions=[])
    result = run(make_action(dict(CONNECTION, id="tok_gone1", state="absent", token_path=str(path)), [gone]))
    assert not os.path.lexists(str(path))
    assert result["token_removed"] is True
    assert result["changed"] is True


def test_absent_of_a_key_already_gone_keeps_a_file_the_record_does_not_tie_to_it(make_action, tmp_path):
    """A copy-pasted task for a key that never existed must not remove a live key's token file."""
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    _token_store.update_manifest(str(tmp_path), "ci.token", {"id": "tok_live1", "name": "ci-live"})
    gone = dict(changed=False, api_key={}, actions=[])
    result = run(make_action(dict(CONNECTION, name="old-ci-gone", state="absent", token_path=str(path)), [gone]))
    assert path.read_text() == OLD_TOKEN
    assert result["token_removed"] is False and result["changed"] is False


def test_deleting_a_duplicate_keeps_the_file_of_the_other_key(make_action, tmp_path, warnings):
    path = tmp_path / "dup.token"
    path.write_text(OLD_TOKEN)
    _token_store.update_manifest(str(tmp_path), "dup.token", {"id": "tok_keep1", "name": "dup"})
    deleted = dict(changed=True, api_key={}, actions=["delete"], deleted_id="tok_twin1")
    result = run(make_action(dict(CONNECTION, id="tok_twin1", state="absent", token_path=str(path)), [deleted]))
    assert path.read_text() == OLD_TOKEN
    assert result["token_removed"] is False
    assert any("tok_keep1" in warning and str(path) in warning for warning in warnings), warnings


def test_absent_without_a_file_reports_nothing_removed(make_action, tmp_path):
    gone = dict(changed=False, api_key={}, actions=[])
    result = run(make_action(dict(CONNECTION, name="ci", state="absent", token_path=str(tmp_path / "ci.token")),
                             [gone]))
    assert result["token_removed"] is False
    assert result["changed"] is False


def test_a_failed_delete_keeps_the_token_file(make_action, tmp_path):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    failure = dict(failed=True, changed=False, msg="The API answered 500.")
    result = run(make_action(dict(CONNECTION, name="ci", state="absent", token_path=str(path)), [failure]))
    assert result["failed"] is True
    assert path.read_text() == OLD_TOKEN
    assert "token_removed" not in result


def test_existing_key_without_token_file_gets_a_warning(make_action, tmp_path, warnings):
    path = tmp_path / "ci.token"
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [unchanged()]))
    assert result["changed"] is False
    assert result["token_written"] is False
    assert "warnings" not in result
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    assert "tok_old0000000001" in warnings[0]
    assert "state=regenerated" in warnings[0]


def test_existing_key_with_its_token_file_gets_no_warning(make_action, tmp_path, warnings):
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [unchanged()]))
    assert warnings == [] and "warnings" not in result
    assert path.read_text() == OLD_TOKEN


# --------------------------------------------------------------------------- renamed keys


def renamed_to(name, actions=("update",)):
    return dict(changed=bool(actions), api_key=api_key(key_id="tok_old0000000001", name=name), actions=list(actions))


def recorded(directory, file_name, key_id="tok_old0000000001", name="ci", last="d063"):
    """A token file and its record entry; ``last`` is the recorded token_last_slice (api_key()'s by default)."""
    (directory / file_name).write_text(OLD_TOKEN)
    _token_store.update_manifest(str(directory), file_name, {"id": key_id, "name": name, "token_last_slice": last,
                                                             "issued_at": "2026-11-01T00:00:00+00:00"})


@pytest.mark.parametrize("actions", [["update"], []])  # renamed now, or by an earlier run that left the file
def test_a_renamed_key_takes_its_token_file_along(make_action, tmp_path, warnings, actions):
    recorded(tmp_path, "ci.token")
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer", actions)]))
    assert path.read_text() == OLD_TOKEN
    assert not os.path.lexists(str(tmp_path / "ci.token"))
    assert result["token_moved_from"] == str(tmp_path / "ci.token")
    assert result["changed"] is True and result["token_written"] is False
    assert warnings == []
    tokens = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]
    assert list(tokens) == ["deployer.token"]
    assert tokens["deployer.token"] == {"id": "tok_old0000000001", "name": "deployer", "token_last_slice": "d063",
                                        "issued_at": "2026-11-01T00:00:00+00:00"}


def test_check_mode_reports_the_move_and_moves_nothing(make_action, tmp_path, warnings):
    recorded(tmp_path, "ci.token")
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer")], check_mode=True))
    assert result["token_moved_from"] == str(tmp_path / "ci.token") and result["changed"] is True
    assert (tmp_path / "ci.token").read_text() == OLD_TOKEN and not os.path.lexists(str(path))
    assert list(json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]) == ["ci.token"]
    assert warnings == []


@pytest.mark.parametrize("setup", ["other key's file", "two files of the key", "recorded file is gone",
                                   "record names a path", "record names a file that is no token file"])
def test_no_move_without_exactly_one_file_the_record_ties_to_the_key(make_action, tmp_path, warnings, setup):
    if setup == "record names a path":
        (tmp_path / "sub").mkdir()
        recorded(tmp_path, "sub/ci.token")
    elif setup == "record names a file that is no token file":
        recorded(tmp_path, "notes.txt")
    elif setup == "other key's file":
        recorded(tmp_path, "ci.token", key_id="tok_other000000001")
    elif setup == "two files of the key":
        recorded(tmp_path, "ci.token")
        recorded(tmp_path, "ci-copy.token")
    else:
        _token_store.update_manifest(str(tmp_path), "ci.token", {"id": "tok_old0000000001", "name": "ci"})
    before = all_bytes_under(tmp_path)
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer")]))
    assert "token_moved_from" not in result and not os.path.lexists(str(path))
    assert {name: data for name, data in all_bytes_under(tmp_path).items() if name != LOCK_NAME} == \
        {name: data for name, data in before.items() if name != LOCK_NAME}
    assert len(warnings) == 1 and "state=regenerated" in warnings[0]


def test_a_key_that_was_not_renamed_keeps_its_token_file_where_it_is(make_action, tmp_path, warnings):
    """Two tasks of one key with two token_path values in one directory: no file moves to and fro on every run."""
    recorded(tmp_path, "ci.token", name="ci")
    before = all_bytes_under(tmp_path)
    path = tmp_path / "ci-copy.token"
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [unchanged()]))
    assert "token_moved_from" not in result and result["changed"] is False
    assert {name: data for name, data in all_bytes_under(tmp_path).items() if name != LOCK_NAME} == \
        {name: data for name, data in before.items() if name != LOCK_NAME}
    assert len(warnings) == 1 and "state=regenerated" in warnings[0]


def test_a_file_that_holds_an_old_token_of_the_renamed_key_is_not_moved(make_action, tmp_path, warnings):
    """The key was rotated since its file was written (the recorded token_last_slice is not the key's): the file
    holds a token that no longer works, so it is not passed off as the key's token file."""
    recorded(tmp_path, "ci.token", last="0ld0l")
    before = all_bytes_under(tmp_path)
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer")]))  # the key's token_last_slice is d063
    assert "token_moved_from" not in result and not os.path.lexists(str(path))
    assert {name: data for name, data in all_bytes_under(tmp_path).items() if name != LOCK_NAME} == \
        {name: data for name, data in before.items() if name != LOCK_NAME}
    assert len(warnings) == 1 and "state=regenerated" in warnings[0]


def test_a_move_that_fails_leaves_the_token_where_it_was_and_says_so(make_action, tmp_path, warnings, monkeypatch):
    recorded(tmp_path, "ci.token")
    real_rename = os.rename

    def no_rename(source, target):
        if str(source).endswith("ci.token"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(source, target)

    monkeypatch.setattr(_token_store.os, "rename", no_rename)
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer")]))
    assert (tmp_path / "ci.token").read_text() == OLD_TOKEN and "token_moved_from" not in result
    assert list(json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]) == ["ci.token"]
    assert any("could not be moved" in warning and "still in %s" % (tmp_path / "ci.token") in warning
               for warning in warnings), warnings


@pytest.mark.parametrize("own_file", [True, False])
def test_a_key_renamed_onto_another_keys_token_file_gets_a_warning(make_action, tmp_path, warnings, own_file):
    """Swapping two keys' names by id: the new name's file holds the other key's token, which is kept, and said."""
    recorded(tmp_path, "deployer.token", key_id="tok_other000000001", name="deployer")
    if own_file:
        recorded(tmp_path, "ci.token")
    before = all_bytes_under(tmp_path)
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", token_path=str(path)),
                             [renamed_to("deployer")]))
    assert "token_moved_from" not in result
    assert {name: data for name, data in all_bytes_under(tmp_path).items() if name != LOCK_NAME} == \
        {name: data for name, data in before.items() if name != LOCK_NAME}
    assert len(warnings) == 1
    assert "holds the token of key tok_other000000001" in warnings[0] and str(path) in warnings[0]
    assert ("still in %s" % (tmp_path / "ci.token") in warnings[0]) is own_file


def test_a_new_token_never_overwrites_a_file_the_record_ties_to_another_key(make_action, tmp_path, warnings):
    """After two keys swapped names by id, rotating one must not destroy the other's working token."""
    recorded(tmp_path, "deployer.token", key_id="tok_other000000001", name="deployer")
    path = tmp_path / "deployer.token"
    result = run(make_action(dict(CONNECTION, id="tok_old0000000001", name="deployer", state="regenerated",
                                  token_path=str(path)), [rotated(api_key=api_key("tok_old0000000001", "deployer"))]))
    aside = tmp_path / "deployer.tok_other000000001.token"
    assert path.read_text() == TOKEN and result["token_written"] is True
    assert aside.read_text() == OLD_TOKEN, "the other key's token is kept, beside"
    tokens = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]
    assert tokens["deployer.tok_other000000001.token"]["id"] == "tok_other000000001"
    assert tokens["deployer.token"]["id"] == "tok_old0000000001"
    assert len(warnings) == 1 and str(aside) in warnings[0] and "tok_other000000001" in warnings[0]


def rotate_into(make_action, path, key_id="tok_old0000000001", name="deployer", **args):
    """Run a rotate of key ``key_id`` (named ``name``) into ``path``; the module answers with TOKEN."""
    args = dict(CONNECTION, name=name, state="regenerated", token_path=str(path), **args)
    action = make_action(args, [rotated(api_key=api_key(key_id, name))])
    return action, run(action)


def test_a_file_whose_aside_name_is_taken_is_set_aside_under_a_numbered_name(make_action, tmp_path, warnings):
    """Two keys rotated in turn into one token_path: the aside name from the run before is taken."""
    recorded(tmp_path, "deployer.token", key_id="tok_other000000001", name="deployer")
    (tmp_path / "deployer.tok_other000000001.token").write_text("from the run before")
    (tmp_path / "deployer.tok_other000000001.2.token").write_text("and the one before")
    path = tmp_path / "deployer.token"
    _action, result = rotate_into(make_action, path, id="tok_old0000000001")
    aside = tmp_path / "deployer.tok_other000000001.3.token"
    assert "failed" not in result and result["token_written"] is True
    assert path.read_text() == TOKEN and mode_of(path) == 0o600
    assert aside.read_text() == OLD_TOKEN, "the other key's token is kept, beside"
    assert (tmp_path / "deployer.tok_other000000001.token").read_text() == "from the run before"
    tokens = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]
    assert tokens["deployer.tok_other000000001.3.token"]["id"] == "tok_other000000001"
    assert len(warnings) == 1 and str(aside) in warnings[0]


def test_an_aside_name_too_long_is_refused_before_any_request(make_action, tmp_path):
    name = "n" * 244 + ".token"  # 250 bytes: with ".tok_other000000001" the aside name is 269
    recorded(tmp_path, name, key_id="tok_other000000001", name="other")
    path = tmp_path / name
    for check_mode in (False, True):
        action = make_action(dict(CONNECTION, name="ln2", state="regenerated", token_path=str(path)), [],
                             check_mode=check_mode)
        with pytest.raises(AnsibleActionFail) as failure:
            run(action)
        message = str(failure.value)
        assert action._execute_module.call_count == 0
        for words in (str(path), "tok_other000000001", "269 bytes", "Move that file to a shorter name",
                      "shorter file name", "Nothing was sent"):
            assert words in message, (words, message)
        assert "free space" not in message
    assert path.read_text() == OLD_TOKEN


@pytest.mark.parametrize("args", [dict(state="absent"), dict(id="tok_other000000001"), dict(name="other")])
def test_an_aside_name_too_long_does_not_stop_a_task_of_the_recorded_key_or_a_delete(make_action, tmp_path, args):
    name = "n" * 244 + ".token"
    recorded(tmp_path, name, key_id="tok_other000000001", name="other")
    task = dict(dict(CONNECTION, name="ln2", token_path=str(tmp_path / name)), **args)
    action = make_action(task, [unchanged(api_key=api_key("tok_other000000001", "other"))])
    run(action)
    assert action._execute_module.call_count == 1


def rescued_files(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.startswith(".latitudesh-rescued-"))


def test_a_rotated_token_that_cannot_be_written_for_a_too_long_aside_name_is_kept_under_a_rescue_name(
        make_action, tmp_path, warnings):
    """The record ties the file to an older key of the same name (deleted and made again elsewhere): no request
    could tell, so the rotate happens; the new token must not be lost."""
    name = "n" * 244 + ".token"
    recorded(tmp_path, name, key_id="tok_other000000001", name="ln2")
    path = tmp_path / name
    _action, result = rotate_into(make_action, path, name="ln2")
    rescue = tmp_path / ".latitudesh-rescued-tok_old0000000001.token"
    assert rescued_files(tmp_path) == [rescue.name]
    assert rescue.read_text() == TOKEN and mode_of(rescue) == 0o600
    assert path.read_text() == OLD_TOKEN, "the other key's token is kept"
    tokens = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]
    assert tokens[rescue.name]["id"] == "tok_old0000000001" and tokens[name]["id"] == "tok_other000000001"
    assert result["failed"] is True and result["changed"] is True and result["token_written"] is False
    assert result["token_rescued_to"] == str(rescue)
    message = result["msg"]
    for words in ("was rotated", "safe in %s" % rescue, "key tok_old0000000001", "269 bytes", str(path),
                  "state=present", "holds the token of key tok_other000000001 and was kept"):
        assert words in message, (words, message)
    assert "free space" not in message and "permissions" not in message
    assert TOKEN not in json.dumps(result)


def test_a_rescued_token_is_moved_into_place_by_the_next_run_once_the_path_is_free(make_action, tmp_path, warnings):
    name = "n" * 244 + ".token"
    recorded(tmp_path, name, key_id="tok_other000000001", name="ln2")
    path = tmp_path / name
    _action, first = rotate_into(make_action, path, name="ln2")
    rescue = first["token_rescued_to"]
    # What the message says: move the other key's file away, then run the task with state=present.
    os.rename(str(path), str(tmp_path / "other.token"))
    result = run(make_action(dict(CONNECTION, name="ln2", token_path=str(path)),
                             [unchanged(api_key=api_key("tok_old0000000001", "ln2"))]))
    assert result["token_moved_from"] == rescue and path.read_text() == TOKEN
    assert rescued_files(tmp_path) == []
    tokens = json.loads((tmp_path / MANIFEST_NAME).read_text())["tokens"]
    assert tokens[name]["id"] == "tok_old0000000001"


def test_a_rescued_token_is_moved_into_place_beside_an_older_file_of_the_same_key(make_action, tmp_path, warnings):
    # The record also ties an older file to the key (its token rotated away since): the rescued file, whose
    # recorded token is the key's current one, is the one to move.
    name = "n" * 244 + ".token"
    recorded(tmp_path, name, key_id="tok_other000000001", name="ln2")
    recorded(tmp_path, "ln2-old.token", name="ln2", last="0ld0")
    path = tmp_path / name
    _action, first = rotate_into(make_action, path, name="ln2")
    os.rename(str(path), str(tmp_path / "other.token"))
    result = run(make_action(dict(CONNECTION, name="ln2", token_path=str(path)),
                             [unchanged(api_key=api_key("tok_old0000000001", "ln2"))]))
    assert result.get("token_moved_from") == first["token_rescued_to"] and path.read_text() == TOKEN, result


def test_every_aside_name_taken_keeps_the_new_token_under_a_rescue_name(make_action, tmp_path, warnings):
    recorded(tmp_path, "deployer.token", key_id="tok_other000000001", name="deployer")
    (tmp_path / "deployer.tok_other000000001.token").write_text("x")
    for number in range(2, 100):
        (tmp_path / ("deployer.tok_other000000001.%d.token" % number)).write_text("x")
    (tmp_path / ".latitudesh-rescued-tok_old0000000001.token").write_text("an earlier rescue")
    path = tmp_path / "deployer.token"
    _action, result = rotate_into(make_action, path, id="tok_old0000000001")
    rescue = tmp_path / ".latitudesh-rescued-tok_old0000000001.2.token"
    assert rescue.read_text() == TOKEN and result["token_rescued_to"] == str(rescue)
    assert path.read_text() == OLD_TOKEN and "all taken" in result["msg"]
    assert (tmp_path / ".latitudesh-rescued-tok_old0000000001.token").read_text() == "an earlier rescue"


def fail_writes_to(monkeypatch, path):
    """Make writing a token to ``path`` (and only there) fail with an I/O error."""
    real = action_module.write_token_file

    def write(target, data):
        if target == str(path):
            raise TokenStoreError("Input/output error")
        return real(target, data)

    monkeypatch.setattr(action_module, "write_token_file", write)


def test_a_timeout_while_a_token_is_kept_is_preceded_by_where_it_is(make_action, tmp_path, warnings, monkeypatch):
    # Ansible's timeout (SIGALRM, whose handler raises) waits until the token is kept, then replaces the
    # task's result: a warning says first where the token is.
    class TimedOut(BaseException):
        pass

    def on_alarm(signum, frame):
        raise TimedOut()

    real = action_module.write_token_file

    def write(target, data):
        os.kill(os.getpid(), signal.SIGALRM)  # the task's timeout comes while the file is written
        return real(target, data)

    monkeypatch.setattr(action_module, "write_token_file", write)
    path = tmp_path / "ci.token"
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with pytest.raises(TimedOut):
            run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created()]))
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert path.read_text() == TOKEN
    assert [w for w in warnings if "before the interrupt or timeout" in w and str(path) in w], warnings


def test_a_failed_write_after_a_rotate_keeps_the_token_under_a_rescue_name(make_action, tmp_path, monkeypatch):
    """The write to token_path fails (not the directory): the token goes to a free name, the advice names the cause."""
    path = tmp_path / "ci.token"
    path.write_text(OLD_TOKEN)
    fail_writes_to(monkeypatch, path)
    result = run(make_action(dict(CONNECTION, name="ci", state="regenerated", token_path=str(path)), [rotated()]))
    rescue = tmp_path / ".latitudesh-rescued-tok_old0000000001.token"
    assert rescue.read_text() == TOKEN and result["token_rescued_to"] == str(rescue)
    assert not os.path.lexists(str(path)), "the old token, which no longer works, is removed"
    assert "Input/output error" in result["msg"] and "fix the destination" in result["msg"]


def test_a_failed_write_and_undo_after_a_create_keeps_the_token_under_a_rescue_name(make_action, tmp_path, monkeypatch):
    path = tmp_path / "ci.token"
    fail_writes_to(monkeypatch, path)
    undo_failed = dict(failed=True, changed=False, msg="The API answered 503 Service Unavailable.")
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [created(), undo_failed]))
    rescue = tmp_path / ".latitudesh-rescued-tok_new0000000001.token"
    assert rescue.read_text() == TOKEN and result["token_rescued_to"] == str(rescue)
    assert result["failed"] is True and result["changed"] is True
    assert "503 Service Unavailable" in result["msg"] and str(rescue) in result["msg"]


def test_a_failed_write_after_a_rotate_keeps_a_file_the_record_ties_to_another_key(make_action, tmp_path, warnings,
                                                                                   monkeypatch):
    """Nothing can be written at all (the rescue fails too): the other key's file stays, the advice fits."""
    name = "n" * 244 + ".token"
    recorded(tmp_path, name, key_id="tok_other000000001", name="ln2")
    fill_disk(monkeypatch)
    path = tmp_path / name
    _action, result = rotate_into(make_action, path, name="ln2")
    assert result["failed"] is True and result["token_written"] is False and "token_rescued_to" not in result
    assert path.read_text() == OLD_TOKEN, "the other key's token is not removed"
    assert "holds the token of key tok_other000000001 and was kept" in result["msg"]
    assert "state=regenerated" in result["msg"] and "free space" not in result["msg"]
    assert TOKEN not in result["msg"]


def test_a_token_file_the_record_ties_to_the_key_itself_gets_no_warning(make_action, tmp_path, warnings):
    recorded(tmp_path, "ci.token", key_id="tok_old0000000001")
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(tmp_path / "ci.token")), [unchanged()]))
    assert warnings == [] and "token_moved_from" not in result


def test_a_failed_module_run_is_returned_with_the_path_and_no_file(make_action, tmp_path, warnings):
    path = tmp_path / "ci.token"
    failure = dict(failed=True, changed=False, msg="2 API keys are named 'ci'.")
    result = run(make_action(dict(CONNECTION, name="ci", token_path=str(path)), [failure]))
    assert result["failed"] is True
    assert result["msg"] == "2 API keys are named 'ci'."
    assert result["token_written"] is False
    assert not os.path.lexists(str(path))
    assert warnings == [] and "warnings" not in result


# --------------------------------------------------------------------------- the directory lock

HOLDER = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("token_store", sys.argv[1])
store = importlib.util.module_from_spec(spec)
spec.loader.exec_module(store)
with store.DirectoryLock(sys.argv[2], wait=0):
    sys.stdout.write("locked\n")
    sys.stdout.flush()
    sys.stdin.readline()
"""


def test_the_lock_is_held_while_the_module_runs_and_released_after(make_action, tmp_path):
    path = tmp_path / "prod" / "ci.token"
    seen = []

    def module_run(**kwargs):
        try:
            with DirectoryLock(str(path.parent), wait=0):
                seen.append("lock was free")
        except TokenStoreError:
            seen.append("lock was held")
        return created()

    action = make_action(dict(CONNECTION, name="ci", token_path=str(path)))
    action._execute_module = MagicMock(side_effect=module_run)
    run(action)
    assert seen == ["lock was held"]
    with DirectoryLock(str(path.parent), wait=0):
        pass


def test_a_lock_held_by_another_process_fails_without_any_module_run(make_action, tmp_path, short_lock_wait):
    directory = tmp_path / "prod"
    directory.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, _token_store.__file__, str(directory)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        action = make_action(dict(CONNECTION, name="ci", token_path=str(directory / "ci.token")), [created()])
        with pytest.raises(AnsibleActionFail) as info:
            run(action)
        message = str(info.value)
        assert str(directory / LOCK_NAME) in message
        assert "process %d" % holder.pid in message
        assert action._execute_module.call_count == 0
        assert not (directory / "ci.token").exists()
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone, the task runs.
    action = make_action(dict(CONNECTION, name="ci", token_path=str(directory / "ci.token")), [created()])
    assert run(action)["token_written"] is True
