# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The built collection tarball, installed into an empty collections path of a fresh venv, works.

Nothing here imports the collection from the source tree: the commands run with the fresh
venv's binaries, ``ANSIBLE_COLLECTIONS_PATH`` set to the install path only, and a working
directory outside the repository. See conftest.py for the fixtures.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shutil
import stat
import tarfile

import pytest

# Paths that must never reach the tarball (build_ignore in galaxy.yml, plus ansible-galaxy's defaults).
FORBIDDEN_TOP = frozenset([".git", ".ci", ".tmp", ".nox", ".ansible", ".pytest_cache", "collections", "dist"])
FORBIDDEN_FILES = frozenset([
    "Makefile", "noxfile.py", "antsibull-nox.toml", ".gitignore", ".ansible-lint",
    "tests/integration/inventory", "tests/integration/integration_config.yml",
    "tests/integration/cloud-config-latitudesh.ini",
])
REQUIRED = (
    "MANIFEST.json", "FILES.json",
    "meta/runtime.yml",
    "plugins/modules/api_key.py", "plugins/modules/api_key_info.py", "plugins/modules/token_dir.py",
    "plugins/action/api_key.py", "plugins/action/token_dir.py", "plugins/plugin_utils/_token_store.py",
    "plugins/module_utils/_api.py", "plugins/module_utils/_api_connection.py", "plugins/module_utils/_api_keys.py",
    "plugins/module_utils/_errors.py",
    "plugins/doc_fragments/api.py",
    "plugins/filter/api_keys.py", "plugins/filter/api_key_plan.yml", "plugins/filter/api_key_spec_errors.yml",
    "plugins/filter/api_key_summary.yml",
    "roles/team_api_keys/meta/argument_specs.yml", "roles/team_api_keys/tasks/main.yml",
    "tests/sandbox/latitude_sandbox.py",  # docs/sandbox.md tells users of an installed collection to run it
)
# Local clutter planted next to a copy to check that build_ignore drops it.
DECOYS = (
    "tests/output/junit/decoy.xml", ".venv/bin/decoy", ".venvs/nox/bin/decoy", ".tmp/decoy",
    ".nox/units-2-21/bin/decoy",
    ".ansible/collections/decoy", ".pytest_cache/decoy", "collections/decoy", "dist/decoy.txt",
    "old-build.tar.gz", "plugins/modules/__pycache__/api_key.cpython-311.pyc", "plugins/module_utils/decoy.pyc",
    "tests/integration/inventory", "tests/integration/integration_config.yml", ".git/HEAD",
    "tests/integration/cloud-config-latitudesh.ini",
)

ROLE_PLAYBOOK = """\
---
- name: Apply latitudesh.cloud.team_api_keys from the installed collection
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/latitudesh.cloud.latitudesh:
      api_url: "{{ sandbox_url }}"
      api_retries: 0
  roles:
    - role: latitudesh.cloud.team_api_keys
      vars:
        team_api_keys_token_dir: "{{ token_dir }}"
        team_api_keys_teams:
          - name: platform
            auth_token: "{{ platform_admin_token }}"
            api_keys:
              - name: ci-deployer
                allowed_ips: [192.0.2.0/24]
              - name: packaging-check
                read_only: true
              - name: monitoring
                state: absent
  post_tasks:
    - name: Look at the new key's token file
      ansible.builtin.stat:
        path: "{{ token_dir }}/platform/packaging-check.token"
      register: packaging_token_file

    - name: The token file exists and only its owner can read it
      ansible.builtin.assert:
        that:
          - packaging_token_file.stat.exists
          - packaging_token_file.stat.mode == '0600'
"""

RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def members(path):
    with tarfile.open(path) as archive:
        return [name[2:] if name.startswith("./") else name for name in archive.getnames()]


def clutter(names):
    """The archive members that are local clutter rather than part of the collection."""
    found = []
    for name in names:
        parts = name.split("/")
        if (parts[0] in FORBIDDEN_TOP or parts[0].startswith(".venv") or name in FORBIDDEN_FILES
                or name == "tests/output" or name.startswith("tests/output/") or "__pycache__" in parts
                or name.endswith((".pyc", ".tar.gz"))):
            found.append(name)
    return found


def test_tarball_holds_the_collection_and_no_clutter(tarball, pristine_copy, collection_info):
    names = members(tarball)
    assert clutter(names) == []
    missing = [name for name in REQUIRED + (collection_info["readme"],) if name not in names]
    assert missing == [], "missing from %s: %s" % (os.path.basename(tarball), missing)
    # Every file in the tarball comes from the repository (nothing generated, nothing stray).
    files = [name for name in names if name not in ("MANIFEST.json", "FILES.json")]
    strays = [name for name in files if not os.path.lexists(os.path.join(pristine_copy, name))]
    assert strays == []
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (
        collection_info["namespace"], collection_info["name"], collection_info["version"])


def test_build_ignore_drops_local_clutter(pristine_copy, packaging_tmp, build_collection):
    source = os.path.join(packaging_tmp, "cluttered", "cloud")
    shutil.copytree(pristine_copy, source, symlinks=True)
    for name in DECOYS:
        path = os.path.join(source, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("local clutter\n")
    names = members(build_collection(source, os.path.join(packaging_tmp, "cluttered-dist")))
    assert [name for name in DECOYS if name in names] == []
    assert clutter(names) == []


def test_installed_collection_is_listed_from_the_install_path(installed, collection_info):
    proc = installed.run("ansible-galaxy", ["collection", "list", "latitudesh.cloud", "--format", "json"])
    listing = json.loads(proc.stdout)
    assert listing == {
        os.path.join(installed.collections_path, "ansible_collections"): {
            "latitudesh.cloud": {"version": collection_info["version"]},
        },
    }


def test_adhoc_api_key_info_against_the_sandbox(installed, sandbox):
    token = sandbox["teams"]["platform"]["admin_token"]
    proc = installed.run(
        "ansible", ["localhost", "-m", "latitudesh.cloud.api_key_info", "-a", "api_url=%s name=ci-deployer" % sandbox["url"]],
        extra_env={"LATITUDESH_AUTH_TOKEN": token},
    )
    head, _sep, body = proc.stdout.partition("=>")
    assert head.strip() == "localhost | SUCCESS", proc.stdout
    result = json.loads(body)
    assert result["changed"] is False
    assert [key["name"] for key in result["api_keys"]] == ["ci-deployer"]
    assert "token" not in result["api_keys"][0]
    assert token not in proc.stdout + proc.stderr


def test_role_from_the_installed_collection(installed, sandbox):
    run_dir = installed.cwd
    playbook = os.path.join(run_dir, "team_api_keys.yml")
    with open(playbook, "w") as handle:
        handle.write(ROLE_PLAYBOOK)
    token_dir = os.path.join(run_dir, "credentials")
    shutil.rmtree(token_dir, ignore_errors=True)
    extra_vars = os.path.join(run_dir, "vars.json")
    descriptor = os.open(extra_vars, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({
            "sandbox_url": sandbox["url"],
            "token_dir": token_dir,
            "platform_admin_token": sandbox["teams"]["platform"]["admin_token"],
        }, handle)

    first = installed.run("ansible-playbook", ["-e", "@" + extra_vars, playbook])
    _ok, changed, unreachable, failed = (int(value) for value in RECAP.search(first.stdout).groups())
    assert (unreachable, failed) == (0, 0)
    assert changed >= 1, first.stdout

    keys = dict((key["name"], key) for key in sandbox["state"]()["teams"][0]["keys"])
    assert sorted(keys) == ["admin", "ci-deployer", "packaging-check"]
    assert keys["ci-deployer"]["allowed_ips"] == ["192.0.2.0/24"]
    assert keys["packaging-check"]["read_only"] is True
    token_file = os.path.join(token_dir, "platform", "packaging-check.token")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(token_file)).st_mode) == 0o700
    with open(token_file) as handle:
        assert handle.read().strip() == keys["packaging-check"]["token"]
    for token in (keys["packaging-check"]["token"], sandbox["teams"]["platform"]["admin_token"]):
        assert token not in first.stdout + first.stderr

    second = installed.run("ansible-playbook", ["-e", "@" + extra_vars, playbook])
    assert RECAP.search(second.stdout).groups()[1:] == ("0", "0", "0"), second.stdout


@pytest.mark.parametrize("doc_type, name, expected", [
    ("module", "latitudesh.cloud.api_key", ["regenerated", "force", "group/latitudesh.cloud.latitudesh", "token_path",
                                            "token_vault_password", "action plugin"]),
    ("module", "latitudesh.cloud.token_dir", ["secure_files", "controller", "issue record"]),
    ("filter", "latitudesh.cloud.api_key_summary", ["converged", "purged", "prediction"]),
    ("role", "latitudesh.cloud.team_api_keys", ["ENTRY POINT: *main*", "team_api_keys_teams", "team_api_keys_purge"]),
    ("filter", "latitudesh.cloud.api_key_plan", ["declared", "purge", "converge"]),
])
def test_ansible_doc_renders_from_the_installed_collection(installed, doc_type, name, expected):
    proc = installed.run("ansible-doc", ["-t", doc_type, name])
    header = proc.stdout.splitlines()[0]
    assert name in header
    assert "(%s" % installed.collection_dir in header, header
    missing = [text for text in expected if text not in proc.stdout]
    assert missing == [], proc.stdout
