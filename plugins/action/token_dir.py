# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of latitudesh.cloud.token_dir: a token directory's modes, files and issue record.

Everything happens in this process on the controller, with no module run: the role calls it once
per team. Documented in the module of the same name.
"""

import os
import stat

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.latitudesh.cloud.plugins.modules.token_dir import ARGUMENT_SPEC
from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import (
    TOKEN_SUFFIX,
    TokenStoreError,
    display_problem,
    make_private_dirs,
    name_problem,
    nearest_existing,
    read_manifest,
)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not args["path"]:
            raise AnsibleActionFail("path is empty; give the token directory, for example "
                                    "'{{ playbook_dir }}/credentials'.")
        if "\x00" in args["path"]:
            raise AnsibleActionFail("path contains a NUL character; give the token directory without it.")
        if display_problem(args["path"]):
            raise AnsibleActionFail("path %s; give the token directory without it." % display_problem(args["path"]))
        path = os.path.expanduser(args["path"])
        if not os.path.isabs(path):
            path = os.path.join(self._loader.get_basedir(), path)
        path = os.path.normpath(path)
        for name in args["secure_files"]:
            problem = name_problem(name)
            if problem:
                raise AnsibleActionFail("secure_files entry %r %s; give file names in path, not paths." % (name, problem))
        check = self._task.check_mode
        try:
            changed = _private_directory(path, check)
            files, secured, symlinks = _secure(path, args["secure_files"], check)
        except (OSError, TokenStoreError) as exc:
            raise AnsibleActionFail("Cannot make the token directory %s private: %s." % (
                path, getattr(exc, "strerror", None) or exc))
        result.update(changed=changed or bool(secured), path=path, files=files, secured=secured, symlinks=symlinks,
                      tokens=read_manifest(path) if os.path.isdir(path) else {})
        return result


def _private_directory(path, check):
    """Create ``path`` (0700) or set it to 0700; True when that changed something."""
    existing = nearest_existing(path)  # a file in the way stops a real run: check mode says so too
    if not os.path.isdir(existing):
        raise TokenStoreError("%s exists and is not a directory" % existing)
    if not os.path.isdir(path):
        if not check:
            make_private_dirs(path)
        return True
    info = os.stat(path)
    if stat.S_IMODE(info.st_mode) == PRIVATE_DIR:
        return False
    # Never take a shared directory (/tmp, a home, /) away from the users it belongs to.
    group_shared = info.st_mode & stat.S_ISGID and info.st_mode & 0o070  # setgid with a group that may use it
    if path == os.sep or info.st_mode & stat.S_ISVTX or group_shared or info.st_uid != os.geteuid():
        raise TokenStoreError(
            "%s is a shared directory (%s); it is not made private. Give a directory of its own for the tokens, "
            "for example %s" % (path, "the root directory" if path == os.sep else "sticky" if info.st_mode & stat.S_ISVTX
                                else "setgid: shared with its group" if group_shared
                                else "owned by uid %d" % info.st_uid, os.path.join(path, "latitudesh-credentials")))
    foreign = _foreign_entries(path)
    if foreign:
        raise TokenStoreError(
            "%s holds what the collection did not write (%s); it is not made private, which would take it away from "
            "whatever uses that. Give the tokens a directory of their own, for example %s, or set its mode to 0700 "
            "yourself" % (path, ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else ""),
                          os.path.join(path, "latitudesh-credentials")))
    if not check:
        os.chmod(path, PRIVATE_DIR)
    return True


def _foreign_entries(path):
    """The entries of ``path`` that no token directory holds (sorted). A token directory holds token files
    (``*.token``, and any file its record lists), the collection's own ``.latitudesh*`` files, a ``.gitignore``, and
    team directories that hold the same."""
    def ours(directory, name, record):
        full = os.path.join(directory, name)
        if os.path.isdir(full) and not os.path.islink(full):
            return False
        return name.startswith(".latitudesh") or name == ".gitignore" or name.endswith(TOKEN_SUFFIX) or name in record

    foreign, record = [], read_manifest(path)
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if ours(path, name, record):
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            team_record = read_manifest(full)
            if all(ours(full, entry, team_record) for entry in os.listdir(full)):
                continue
        foreign.append(name)
    return foreign


def _secure(path, names, check):
    """Set the named regular files to 0600; list the ``*.token`` files as ``find`` does."""
    secured, symlinks = [], []
    if not os.path.isdir(path):
        return [], secured, symlinks
    for name in names:
        target = os.path.join(path, name)
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            symlinks.append(name)
        elif stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != PRIVATE_FILE:
            if not check:
                os.chmod(target, PRIVATE_FILE)
            secured.append(name)
    files = []
    for name in sorted(os.listdir(path)):
        if not name.endswith(TOKEN_SUFFIX):
            continue
        info = os.lstat(os.path.join(path, name))
        files.append({
            "path": os.path.join(path, name),
            "mode": "%04o" % stat.S_IMODE(info.st_mode),
            "islnk": stat.S_ISLNK(info.st_mode),
            "isreg": stat.S_ISREG(info.st_mode),
            "size": _size(os.path.join(path, name), info),
        })
    return files, secured, symlinks


def _size(path, info):
    """The bytes a token file holds: a symlink's target's; 0 for a symlink that points nowhere and for
    anything that is not a regular file (a directory named like a token file holds no token)."""
    if stat.S_ISLNK(info.st_mode):
        try:
            info = os.stat(path)
        except OSError:
            return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0
