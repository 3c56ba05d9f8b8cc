# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the packaging tests.

They prove the built artefact, not the source tree: a pristine copy of the repository's files
is built into a tarball (tests/ci/collection.py), a fresh virtualenv gets only ansible-core (the running version:
the collection needs nothing else), and the tarball is installed into an empty collections path. Every Ansible
command then runs with that venv's binaries, ``ANSIBLE_COLLECTIONS_PATH`` set to that path alone,
and a working directory outside the repository.

The venv is made once per pytest session, under the session's temporary directory.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The build helper (tests/ci/collection.py) and the sandbox's pytest plugin (tests/sandbox).
for _helpers in (os.path.join(ROOT, "tests", "ci"), os.path.join(ROOT, "tests", "sandbox")):
    if _helpers not in sys.path:
        sys.path.insert(0, _helpers)

import collection  # noqa: E402  pylint: disable=wrong-import-position
import pytest_plugin  # noqa: E402  pylint: disable=wrong-import-position

# A directory walk (no git) skips what git would ignore: local venvs, build output, caches.
WALK_SKIP_DIRS = frozenset([
    ".git", ".tmp", ".ansible", "__pycache__", ".pytest_cache", ".mypy_cache", "dist", "collections",
])
WALK_SKIP_PATHS = frozenset(["tests/output", "tests/integration/inventory"])

# Variables that would let the environment of the test run leak into the commands under test.
# pip's own settings (index, certificates) and proxies stay: the venv is installed from the index.
SCRUBBED_PREFIXES = ("ANSIBLE_", "LATITUDESH_", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
LOOPBACK = "127.0.0.1,localhost,::1"

COMMAND_TIMEOUT = 300


def pytest_configure(config):
    pytest_plugin.register(config)


def galaxy_info():
    """galaxy.yml as a dict."""
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        return yaml.safe_load(handle)


def repo_files():
    """The repository's files as the project sees them: tracked plus untracked-not-ignored (or a walk)."""
    if shutil.which("git"):
        try:
            proc = subprocess.run(
                ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                timeout=120, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is not None and proc.returncode == 0 and proc.stdout:
            names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
            return sorted(set(name for name in names if name and os.path.lexists(os.path.join(ROOT, name))))
    return walk_files(ROOT)


def walk_files(top):
    """Every file below ``top`` except local clutter (venvs, build output, caches)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(top):
        reldir = os.path.relpath(dirpath, top)
        reldir = "" if reldir == "." else reldir
        dirnames[:] = [
            name for name in dirnames
            if name not in WALK_SKIP_DIRS and not name.startswith(".venv")
            and os.path.join(reldir, name).replace(os.sep, "/") not in WALK_SKIP_PATHS
        ]
        files.extend(
            os.path.join(reldir, name) for name in filenames if not name.endswith((".pyc", ".tar.gz"))
        )
    return sorted(files)


def copy_files(names, source, dest):
    """Copy the listed relative paths from ``source`` to ``dest`` (symlinks stay symlinks)."""
    for name in names:
        src = os.path.join(source, name)
        if os.path.isdir(src) and not os.path.islink(src):
            continue
        dst = os.path.join(dest, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def clean_env(extra=None, path_first=None):
    """os.environ without Ansible, LATITUDESH_* and Python path settings, plus ``extra``."""
    env = dict((key, value) for key, value in os.environ.items() if not key.startswith(SCRUBBED_PREFIXES))
    no_proxy = ",".join(part for part in (env.get("no_proxy") or env.get("NO_PROXY"), LOOPBACK) if part)
    if path_first:
        env["PATH"] = os.pathsep.join([path_first, env.get("PATH", os.defpath)])
    env.update({
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "NO_PROXY": no_proxy,  # the sandbox is on loopback: never through a proxy
        "no_proxy": no_proxy,
    })
    env.update(extra or {})
    return env


def run(argv, env=None, cwd=None, timeout=COMMAND_TIMEOUT, ok=(0,)):
    """Run a command; fail the test with its output when the exit code is not in ``ok``."""
    started = time.time()
    try:
        proc = subprocess.run(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail("%s timed out after %ss:\n%s" % (" ".join(argv), timeout, exc.output or ""))
    if proc.returncode not in ok:
        pytest.fail("%s exited %s after %.1fs (cwd %s)\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(argv), proc.returncode, time.time() - started, cwd, proc.stdout[-6000:], proc.stderr[-6000:]))
    return proc


def ansible_core_version():
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel
    return __version__


class Installed(object):
    """The installed collection and how to run the fresh venv's Ansible commands against it."""

    def __init__(self, venv, collections_path, cwd, config):
        self.venv = venv
        self.bin = os.path.join(venv, "bin")
        self.collections_path = collections_path
        self.collection_dir = os.path.join(collections_path, "ansible_collections", "latitudesh", "cloud")
        self.cwd = cwd
        self.config = config

    def env(self, extra=None):
        """Only the fresh venv first on PATH and only the install path on ANSIBLE_COLLECTIONS_PATH."""
        return clean_env(dict({
            "VIRTUAL_ENV": self.venv,
            "ANSIBLE_CONFIG": self.config,
            "ANSIBLE_HOME": os.path.join(self.cwd, ".ansible-home"),
            "ANSIBLE_COLLECTIONS_PATH": self.collections_path,
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }, **(extra or {})), path_first=self.bin)

    def run(self, tool, args, extra_env=None, ok=(0,), timeout=COMMAND_TIMEOUT):
        return run([os.path.join(self.bin, tool)] + list(args), env=self.env(extra_env), cwd=self.cwd,
                   timeout=timeout, ok=ok)


class Shell(object):
    """``run`` and ``clean_env`` for test modules (handed out as the ``shell`` fixture)."""

    root = ROOT
    run = staticmethod(run)
    clean_env = staticmethod(clean_env)


@pytest.fixture(scope="session")
def shell():
    return Shell()


@pytest.fixture(scope="session")
def packaging_tmp(tmp_path_factory):
    return str(tmp_path_factory.mktemp("packaging"))


@pytest.fixture(scope="session")
def collection_info():
    info = galaxy_info()
    return {"namespace": info["namespace"], "name": info["name"], "version": str(info["version"]),
            "readme": info.get("readme") or "README.md"}


@pytest.fixture(scope="session")
def pristine_copy(packaging_tmp):
    """The repository's files, without anything git ignores, in a directory of their own."""
    dest = os.path.join(packaging_tmp, "pristine", "cloud")
    os.makedirs(dest)
    copy_files(repo_files(), ROOT, dest)
    return dest


def _build_collection(source, output):
    """``ansible-galaxy collection build`` of ``source`` with the running ansible-core; the tarball path."""
    try:
        return collection.build(output, source, env=clean_env({"ANSIBLE_NOCOLOR": "1"}))
    except collection.BuildError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def build_collection():
    """``build_collection(source_dir, output_dir)`` -> tarball path."""
    return _build_collection


@pytest.fixture(scope="session")
def tarball(pristine_copy, packaging_tmp, collection_info):
    path = _build_collection(pristine_copy, os.path.join(packaging_tmp, "dist"))
    assert os.path.basename(path) == "%(namespace)s-%(name)s-%(version)s.tar.gz" % collection_info
    return path


@pytest.fixture(scope="session")
def fresh_venv(packaging_tmp):
    """A new venv (same interpreter as this run) with only ansible-core==<running>: the collection needs nothing else."""
    venv = os.path.join(packaging_tmp, "venv")
    run([sys.executable, "-m", "venv", venv], env=clean_env())
    python = os.path.join(venv, "bin", "python")
    run([python, "-m", "pip", "install", "--quiet", "ansible-core==%s" % ansible_core_version()],
        env=clean_env({"VIRTUAL_ENV": venv}), cwd=packaging_tmp)
    return venv


@pytest.fixture(scope="session")
def installed(fresh_venv, tarball, packaging_tmp):
    """The tarball installed with the fresh venv's ansible-galaxy into an empty collections path."""
    collections_path = os.path.join(packaging_tmp, "collections")
    os.makedirs(collections_path)
    cwd = os.path.join(packaging_tmp, "work")  # outside the repository: nothing there to pick up
    os.makedirs(cwd)
    config = os.path.join(cwd, "ansible.cfg")
    with open(config, "w") as handle:
        handle.write("[defaults]\n")
    result = Installed(fresh_venv, collections_path, cwd, config)
    try:
        collection.install(tarball, collections_path, python=os.path.join(fresh_venv, "bin", "python"),
                           env=result.env(), cwd=cwd)
    except collection.BuildError as error:
        pytest.fail(str(error))
    # Every installed file matches the MANIFEST.json / FILES.json checksums of the artefact.
    result.run("ansible-galaxy", ["collection", "verify", "--offline", "latitudesh.cloud"])
    return result


@pytest.fixture
def sandbox(sandbox_process):
    """The repository's API sandbox on a free port: ``{"url", "teams", "state"}``; stopped afterwards."""
    state = sandbox_process.control.state
    teams = dict((team["name"], team) for team in state()["teams"])
    return {"url": sandbox_process.url, "teams": teams, "state": state}
