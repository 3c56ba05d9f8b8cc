# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of latitudesh.cloud.api_key: custody of the new token (option token_path).

The module sends every HTTP request, where the task runs; this plugin only checks the destination
before any request, holds the directory lock from the module's list request to the written file,
writes the file (Vault-encrypted when asked) and takes the token out of the result. Documented in
the module.
"""

import contextlib
import os
import signal

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import (
    TOKEN_SUFFIX,
    DirectoryLock,
    TokenStoreError,
    check_destination,
    move_token_file,
    name_problem,
    path_problem,
    read_manifest,
    remove_token_file,
    signals_deferred,
    update_manifest,
    utc_now,
    write_token_file,
)

MODULE = "latitudesh.cloud.api_key"
#: Seconds a task's timeout must leave beyond the module's time budget: start-up, and writing the token.
TIMEOUT_MARGIN = 10
RESCUE_PREFIX = ".latitudesh-rescued-"  # a name token_path can never take (the .latitudesh prefix is reserved)
NUMBERED = 99  # numbered variants tried for a name that is taken
display = Display()


class AsideError(TokenStoreError):
    """The file at token_path holds another key's token and cannot be set aside; says why (never a disk fault)."""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        token_path = args.pop("token_path", None)
        password = args.pop("token_vault_password", None)
        if token_path is None:
            if password is not None:
                raise AnsibleActionFail("token_vault_password needs token_path: give the file to encrypt the token "
                                        "into, or leave token_vault_password out.")
            if not self._task.check_mode:
                self._check_task_timeout(args)
            result.update(self._run_module(args, task_vars))
            return result
        if password is not None and (not isinstance(password, str) or not password):
            raise AnsibleActionFail("token_vault_password must be a non-empty string (the Ansible Vault password "
                                    "for the token file).")
        path = self._destination(token_path)
        try:
            check_destination(path, create=not self._task.check_mode)
        except TokenStoreError as exc:
            raise AnsibleActionFail("%s. Nothing was sent to the API: fix token_path and run the task again." % exc)
        problem = _aside_problem(path, args)
        if problem:
            raise AnsibleActionFail("%s. Nothing was sent to the API." % problem)

        if self._task.check_mode:
            result.update(self._run_module(args, task_vars))
            return self._finish(result, path, args)
        try:
            with DirectoryLock(os.path.dirname(path)):
                self._check_task_timeout(args)  # after the wait for the lock, which the timeout counts too
                answer = self._run_module(args, task_vars)
                # From the moment a token is in hand until it is on disk, an interrupt waits.
                with signals_deferred() as held_back:
                    result.update(answer)
                    token = result.pop("token", None)
                    if token:
                        kept = self._keep(result, path, token, password, args, task_vars)
                        if held_back:  # the interrupt or timeout that comes next replaces this result: say it first
                            display.warning("latitudesh.cloud.api_key, before the interrupt or timeout that came "
                                            "while the new token was kept: %s" % _outcome(kept))
                        return kept
                return self._finish(result, path, args)
        except TokenStoreError as exc:
            raise AnsibleActionFail("%s." % exc)

    # -- helpers -------------------------------------------------------------------------------

    def _run_module(self, args, task_vars):
        return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

    def _check_task_timeout(self, args):
        """Refuse, before any request, a task timeout (``timeout:``, ANSIBLE_TASK_TIMEOUT) shorter than the module may need.

        Ansible ends such a task with an alarm in this process, but the module keeps running where the task runs: a
        key it creates or rotates after that has its token nowhere. The alarm's time left covers the time spent so far.
        """
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        if not left or args.get("state", "present") not in ("present", "regenerated"):
            return
        # As the module finds them: its arguments, else its environment (this one and the task's environment:), else
        # its defaults. A value it refuses sends nothing anyway.
        task_environment = {}
        self._compute_environment_string(task_environment)  # ansible-core's merge of the environment: keyword
        environment = dict(os.environ, **task_environment)
        try:
            timeout = int(args.get("api_timeout", environment.get("LATITUDESH_API_TIMEOUT", 30)))
            retries = int(args.get("api_retries", environment.get("LATITUDESH_API_RETRIES", 5)))
        except (TypeError, ValueError):
            return
        budget = (retries + 3) * timeout
        if left < budget + TIMEOUT_MARGIN:
            raise AnsibleActionFail(
                "The task's timeout leaves %.0f s, less than api_key may need: its time budget on the API, (api_retries + "
                "3) x api_timeout = (%d + 3) x %d = %d s, and %d s to start and write the token. When Ansible's timeout "
                "ends the task, the module keeps running, and a token it creates or rotates then is lost. Nothing was "
                "sent to the API: raise the task's timeout (timeout: or ANSIBLE_TASK_TIMEOUT) to at least %d, or lower "
                "api_timeout or api_retries." % (left, retries, timeout, budget, TIMEOUT_MARGIN, budget + TIMEOUT_MARGIN))

    def _destination(self, token_path):
        if not isinstance(token_path, str):
            raise AnsibleActionFail("token_path must be a path (a string), got %s." % type(token_path).__name__)
        problem = path_problem(token_path)
        if problem:
            raise AnsibleActionFail("%s. Nothing was sent to the API: fix token_path and run the task again." % problem)
        path = os.path.expanduser(token_path)
        if not os.path.isabs(path):
            path = os.path.join(self._loader.get_basedir(), path)
        return os.path.normpath(path)

    def _keep(self, result, path, token, password, args, task_vars):
        """Write the token received from the module, or undo/explain; the token never leaves this method."""
        data = to_bytes(token, errors="surrogate_or_strict")
        if password is not None:
            data = _vault_encrypt(data, password)
        api_key = result.get("api_key") or {}
        try:
            self._set_aside_other_keys_file(result, path, api_key)
            write_token_file(path, data)
        except TokenStoreError as exc:
            return self._write_failed(result, path, data, exc, args, task_vars)
        result["token_path"] = path
        result["token_written"] = True
        try:
            update_manifest(os.path.dirname(path), os.path.basename(path), _record_entry(api_key))
        except TokenStoreError as exc:
            self._warn(result, "The token was written to %s, but its issue time could not be recorded in the "
                               "directory's .latitudesh-tokens.json (%s): its age will be unknown." % (path, exc))
        return result

    def _write_failed(self, result, path, data, exc, args, task_vars):
        """The token could not be written to ``path``: undo a create, or keep the token under a free name."""
        api_key = result.get("api_key") or {}
        key_id, name, reason = api_key.get("id"), api_key.get("name"), str(exc)
        # The advice follows the cause: a file that cannot be set aside is no disk fault.
        fix = ("move the file at %s (the token of key %s) to a name of your choice" % (path, _owner(path))
               if isinstance(exc, AsideError)
               else "fix the destination (free space, permissions)")
        result.update(failed=True, token_path=path, token_written=False)
        if "create" in (result.get("actions") or []):
            try:
                undo = self._run_module(_delete_args(args, key_id), task_vars)
            except Exception as error:  # pylint: disable=broad-except
                undo = {"failed": True, "msg": "%s: %s" % (type(error).__name__, to_text(error))}
            if not undo.get("failed"):
                result.pop("diff", None)
                result.update(changed=False, api_key={}, actions=[], msg=(
                    "The key %r was created (id %s), but its token could not be written to %s: %s. The key was "
                    "deleted again, so nothing changed: %s, then run the task again."
                    % (name, key_id, path, reason, fix)))
                return result
            undo_error = to_text(undo.get("msg", "unknown error")).rstrip(".")
            rescued = self._rescue(path, data, api_key)
            if rescued:
                result.update(changed=True, token_rescued_to=rescued, msg=(
                    "The key %r was created (id %s), but its token could not be written to %s: %s. Deleting the key "
                    "again failed too (%s). %s" % (name, key_id, path, reason, undo_error,
                                                   _rescue_advice(rescued, key_id, path, fix))))
                return result
            result.update(changed=True, msg=(
                "The key %r was created (id %s), but its token could not be written to %s: %s. Deleting the key "
                "again failed too (%s), so it exists without a usable token: delete it (latitudesh.cloud.api_key "
                "with id=%s and state=absent), or once the destination is writable run this task with "
                "state=regenerated and id=%s to issue a new token into %s."
                % (name, key_id, path, reason, undo_error, key_id, key_id, path)))
            return result
        # A rotate cannot be undone: the new token is the only one that works. Keep it under a free name first.
        rescued = self._rescue(path, data, api_key)
        owner = _owner(path)
        try:
            if owner not in (None, key_id) and os.path.lexists(path):
                old_file = "the file there holds the token of key %s and was kept" % owner
            else:
                old_file = "its old token file was removed" if remove_token_file(path) else "there was no old token file"
                update_manifest(os.path.dirname(path), os.path.basename(path), None)
        except TokenStoreError:
            old_file = "the file still holds the old token, which no longer works"
        if rescued:
            result.update(changed=True, token_rescued_to=rescued, msg=(
                "The key %r (id %s) was rotated, so its old token no longer works, and the new token could not be "
                "written to %s: %s (%s). %s"
                % (name, key_id, path, reason, old_file, _rescue_advice(rescued, key_id, path, fix))))
            return result
        result.update(changed=True, msg=(
            "The key %r (id %s) was rotated, so its old token no longer works, but the new token could not be "
            "written to %s: %s (%s). %s, then run the task again with state=regenerated to issue a new token into "
            "%s." % (name, key_id, path, reason, old_file, fix[:1].upper() + fix[1:], path)))
        return result

    @staticmethod
    def _rescue(path, data, api_key):
        """Write a token that could not go to ``path`` to a free name in the same directory (atomic, 0600), recorded
        for its key; the path, or None when that cannot be written either. Call it while holding the lock."""
        directory, key_id = os.path.dirname(path), api_key.get("id")
        names = _numbered("%s%s" % (RESCUE_PREFIX, key_id))
        if name_problem(names[0]):
            names = _numbered(RESCUE_PREFIX.rstrip("-"))
        for name in names:
            target = os.path.join(directory, name)
            if name_problem(name) or os.path.lexists(target):
                continue
            try:
                write_token_file(target, data)
            except TokenStoreError:
                return None
            with contextlib.suppress(TokenStoreError):  # the message names the file and the key either way
                update_manifest(directory, name, _record_entry(api_key))
            return target
        return None

    def _finish(self, result, path, args):
        """Report the token file of a task that received no token: remove it after a delete, move it after a
        rename, warn if missing."""
        result["token_path"] = path
        result["token_written"] = False
        if result.get("failed"):
            return result
        state = args.get("state") or "present"
        if state == "absent":
            removed = False
            if self._file_of_deleted_key(result, path, args):
                if self._task.check_mode:
                    removed = os.path.lexists(path)
                else:
                    try:
                        removed = remove_token_file(path)
                        update_manifest(os.path.dirname(path), os.path.basename(path), None)
                    except TokenStoreError as exc:
                        result.update(failed=True, msg="The key is gone from the API, but %s. Remove the file by "
                                                       "hand; the token in it no longer works." % exc)
                        return result
            result["token_removed"] = removed
            result["changed"] = bool(result.get("changed") or removed)
        elif result.get("api_key", {}).get("id") and not set(result.get("actions") or []) & {"create", "rotate"}:
            if os.path.lexists(path):
                self._warn_other_owner(result, path)
            elif not self._move_renamed_token(result, path):
                self._warn(result, "The key %r (id %s) exists but its token file %s does not: the API shows a token "
                                   "only once, so rotate the key to issue a new token into the file (state=regenerated; "
                                   "in the team_api_keys role, team_api_keys_reissue_missing_tokens: true)."
                           % (result["api_key"].get("name"), result["api_key"]["id"], path))
        return result

    def _set_aside_other_keys_file(self, result, path, api_key):
        """Before a new token goes to ``path``: when the record ties the file there to another key (two keys
        swapped names by id), that key's token may still work, so move the file to ``<name>.<its id>.token``
        (or, when that is taken, to the first free ``<name>.<its id>.<n>.token``). Raises AsideError when it
        cannot be set aside."""
        directory, name = os.path.dirname(path), os.path.basename(path)
        entry = read_manifest(directory).get(name) or {}
        owner = entry.get("id")
        if owner is None or owner == api_key.get("id") or os.path.islink(path) or not os.path.isfile(path):
            return
        names = _aside_names(name, owner)
        problem = name_problem(names[0])
        if problem:
            raise AsideError("the file there holds the token of key %s (so says the directory's record), which may "
                             "still work, and it cannot be set aside: the name %s %s"
                             % (owner, _short(names[0]), problem))
        aside = next((candidate for candidate in names if not name_problem(candidate)
                      and not os.path.lexists(os.path.join(directory, candidate))), None)
        if aside is None:
            raise AsideError("the file there holds the token of key %s (so says the directory's record), which may "
                             "still work, and it cannot be set aside: %s and its numbered variants up to %s are "
                             "all taken" % (owner, os.path.join(directory, names[0]), names[-1]))
        move_token_file(directory, name, aside, entry)
        self._warn(result, "The token file %s held the token of key %s (so says the directory's record), which may "
                           "still work: it was moved to %s before the new token of key %r (id %s) was written to %s."
                   % (path, owner, os.path.join(directory, aside), api_key.get("name"), api_key.get("id"), path))

    def _warn_other_owner(self, result, path):
        """Warn when the directory's record ties the file at ``path`` to another key (as after two keys swapped
        names by id): a token issued for this key into it would overwrite that key's token."""
        directory, api_key = os.path.dirname(path), result["api_key"]
        record = read_manifest(directory)
        owner = (record.get(os.path.basename(path)) or {}).get("id")
        if owner is None or owner == api_key["id"]:
            return
        own = _files_of_key(record, directory, api_key["id"], os.path.basename(path))
        self._warn(result, "The token file %s holds the token of key %s (so says the directory's record), not of key "
                           "%r (id %s)%s. A token issued for key %s into %s would overwrite it: move that file away, or "
                           "give the key another token_path, before rotating the key."
                   % (path, owner, api_key.get("name"), api_key["id"],
                      "; this key's token is still in %s" % os.path.join(directory, own[0]) if len(own) == 1 else "",
                      api_key["id"], path))

    def _move_renamed_token(self, result, path):
        """The key has no file at ``path`` but the record ties another file to it, under the key's old name (the
        key was renamed): move that file to ``path``. True when it was (in check mode: would be) moved."""
        directory, api_key = os.path.dirname(path), result["api_key"]
        record = read_manifest(directory)
        names = _files_of_key(record, directory, api_key["id"], os.path.basename(path))
        current = api_key.get("token_last_slice")
        if len(names) > 1 and current is not None:
            # A rescued token beside an older file of the key: only one can hold the key's current token.
            names = [name for name in names if record[name].get("token_last_slice") == current]
        if len(names) != 1 or (record[names[0]].get("name") == api_key.get("name")
                               and not names[0].startswith(RESCUE_PREFIX)):
            return False  # not renamed since the file was recorded: token_path names another file of the same key
        recorded, current = record[names[0]].get("token_last_slice"), api_key.get("token_last_slice")
        if recorded is not None and current is not None and recorded != current:
            return False  # rotated since: the file holds a token that no longer works
        source = os.path.join(directory, names[0])
        if not self._task.check_mode:
            try:
                move_token_file(directory, names[0], os.path.basename(path), dict(record[names[0]], name=api_key.get("name")))
            except TokenStoreError as exc:
                self._warn(result, "The token file %s of key %r (id %s) could not be moved to %s (%s); the token is "
                                   "still in %s." % (source, api_key.get("name"), api_key["id"], path, exc, source))
                return False
        result.update(token_moved_from=source, changed=True)
        return True

    def _file_of_deleted_key(self, result, path, args):
        """Whether the file at ``path`` held the token of the key this task deleted (or found gone)."""
        if not os.path.lexists(path):
            return False
        entry = read_manifest(os.path.dirname(path)).get(os.path.basename(path))
        owner = (entry or {}).get("id")
        deleted = result.get("deleted_id")
        if deleted is not None and (owner is None or owner == deleted):
            return True
        if deleted is None and owner is not None and owner == args.get("id"):
            return True  # the key was already gone, and the record says this was its file
        if deleted is not None:
            self._warn(result, "The token file %s was not removed: the directory's record says it holds the token of "
                               "key %s, not of the deleted key %s." % (path, owner, deleted))
        return False

    @staticmethod
    def _warn(result, message):  # pylint: disable=unused-argument
        # An action plugin's warnings go to the display (a result's "warnings" must be module warnings).
        display.warning(message)


def _files_of_key(record, directory, key_id, exclude):
    """The token files of ``directory`` (regular files, by plain names) that ``record`` ties to ``key_id``."""
    return [name for name, entry in sorted(record.items())
            if entry.get("id") == key_id and name != exclude and not name_problem(name)
            and name.endswith(TOKEN_SUFFIX) and os.path.isfile(os.path.join(directory, name))
            and not os.path.islink(os.path.join(directory, name))]


def _outcome(result):
    """One line on what happened to a new token: the task's message, or where the token was written."""
    if result.get("msg"):
        return result["msg"]
    api_key = result.get("api_key") or {}
    return "the key %r (id %s) is %s and its token was written to %s." % (
        api_key.get("name"), api_key.get("id"), "created" if "create" in (result.get("actions") or []) else "rotated",
        result.get("token_path"))


def _record_entry(api_key):
    """What the directory's record keeps of a token just issued for ``api_key``."""
    return {"id": api_key.get("id"), "name": api_key.get("name"), "token_last_slice": api_key.get("token_last_slice"),
            "issued_at": utc_now()}


def _owner(path):
    """The key id the directory's record ties the file at ``path`` to, or None."""
    return (read_manifest(os.path.dirname(path)).get(os.path.basename(path)) or {}).get("id")


def _numbered(base):
    """``<base>.token`` and its numbered variants ``<base>.<n>.token``, in the order they are tried."""
    return ["%s%s" % (base, TOKEN_SUFFIX)] + ["%s.%d%s" % (base, number, TOKEN_SUFFIX)
                                              for number in range(2, NUMBERED + 1)]


def _aside_names(name, owner):
    """The names a token file ``name`` that holds the token of key ``owner`` is set aside as, in order."""
    stem = name[:-len(TOKEN_SUFFIX)] if name.endswith(TOKEN_SUFFIX) else name
    return _numbered("%s.%s" % (stem, owner))


def _short(name):
    return name if len(name) <= 60 else "%s...%s" % (name[:24], name[-24:])


def _aside_problem(path, args):
    """Before any request: why a new token for this task could not be written to ``path`` because the file there,
    which the record ties to another key, could not be set aside (its aside name is not a possible file name);
    None otherwise. A task whose key is not known to be another (no id, the recorded name) is let through: if it
    turns out to be another key, the token is kept under a free name (see ActionModule._rescue)."""
    if (args.get("state") or "present") == "absent":
        return None
    directory, name = os.path.dirname(path), os.path.basename(path)
    entry = read_manifest(directory).get(name) or {}
    owner = entry.get("id")
    if owner is None or os.path.islink(path) or not os.path.isfile(path):
        return None
    if args.get("id") == owner or (args.get("id") is None and args.get("name") == entry.get("name")):
        return None
    aside = _aside_names(name, owner)[0]
    problem = name_problem(aside)
    if problem is None:
        return None
    return ("token_path %s holds the token of key %s (so says the directory's record), which may still work: a new "
            "token is written there only after that file is set aside as %s, and that name %s. Move that file to a "
            "shorter name yourself (or remove it, if key %s no longer exists), or give token_path a shorter file "
            "name, then run the task again" % (path, owner, _short(os.path.join(directory, aside)), problem, owner))


def _rescue_advice(rescued, key_id, path, fix):
    return ("The new token is safe in %s (mode 0600; the directory's record ties it to key %s). To put it in place: "
            "%s, then run this task again with state=present (not state=regenerated, which would issue yet another "
            "token): it moves %s to %s." % (rescued, key_id, fix, rescued, path))


def _delete_args(args, key_id):
    """The module arguments that delete the key just created (same connection, by id)."""
    undo = dict((name, value) for name, value in args.items()
                if name not in ("name", "read_only", "allowed_ips", "state", "force", "id"))
    undo.update(id=key_id, state="absent", force=True)
    return undo


def _vault_encrypt(data, password):
    from ansible.parsing.vault import VaultLib, VaultSecret  # only when asked: keeps the plain path light

    vault = VaultLib([("default", VaultSecret(to_bytes(password, errors="surrogate_or_strict")))])
    return vault.encrypt(data)
