# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Metadata that must agree across files: action group, doc fragments, versions, EE metadata.

Only reads files (YAML and Python parsed with ``ast``, nothing imported from the collection).
"""

from __future__ import absolute_import, division, print_function

import ast
import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE_NAME = "latitudesh.cloud"
ACTION_GROUP = "latitudesh"
ACTIONGROUP_FRAGMENT = "latitudesh.cloud.api.ACTIONGROUP"
NOXFILE = os.path.join(ROOT, "noxfile.py")


def read_yaml(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def module_names():
    return sorted(
        os.path.splitext(os.path.basename(path))[0]
        for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
        if os.path.basename(path) != "__init__.py"
    )


def assignments(path):
    """Top-level ``NAME = <literal>`` assignments of a Python file, without importing it."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def literal(path, name):
    node = assignments(path).get(name)
    assert node is not None, "%s defines no %s" % (os.path.relpath(path, ROOT), name)
    return ast.literal_eval(node)


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def controllers_under_test():
    """(ansible-core pin, python) pairs of CONTROLLERS in noxfile.py, read with ast."""
    assert os.path.isfile(NOXFILE), "noxfile.py is missing: it names the ansible-core versions tested"
    node = assignments(NOXFILE).get("CONTROLLERS")
    assert node is not None, "noxfile.py has no CONTROLLERS"
    pairs = [tuple(pair) for pair in ast.literal_eval(node).values()]
    assert pairs, "CONTROLLERS in noxfile.py lists no controller"
    return pairs


def group_members(runtime):
    """Short module names of the action group; entries may be short names or FQCNs."""
    members = []
    for entry in (runtime.get("action_groups") or {}).get(ACTION_GROUP) or []:
        if isinstance(entry, str):
            members.append(entry[len(NAMESPACE_NAME) + 1:] if entry.startswith(NAMESPACE_NAME + ".") else entry)
    return members


def api_modules():
    """The modules that talk to the API: those with the connection options of the latitudesh.cloud.api fragment.

    They make up the action group, so that module_defaults can give them their connection settings; a
    controller-only module such as token_dir takes none of those options and stays out of it.
    """
    found = []
    for module in module_names():
        doc = yaml.safe_load(literal(os.path.join(ROOT, "plugins", "modules", module + ".py"), "DOCUMENTATION"))
        fragments = doc.get("extends_documentation_fragment") or []
        if "latitudesh.cloud.api" in ([fragments] if isinstance(fragments, str) else fragments):
            found.append(module)
    return found


def test_action_group_lists_exactly_the_modules():
    runtime = read_yaml("meta", "runtime.yml")
    members = group_members(runtime)
    modules = api_modules()
    assert "token_dir" in module_names() and "token_dir" not in modules
    assert modules, "no module under plugins/modules"
    missing = sorted(set(modules) - set(members))
    unknown = sorted(set(members) - set(modules))
    assert not missing, "modules missing from action_groups.%s in meta/runtime.yml: %s" % (ACTION_GROUP, missing)
    assert not unknown, "action_groups.%s lists modules that do not exist: %s" % (ACTION_GROUP, unknown)
    assert len(members) == len(set(members)), "duplicate entries in action_groups.%s" % ACTION_GROUP


def test_the_fragment_names_the_group_of_meta_runtime():
    with open(os.path.join(ROOT, "plugins", "doc_fragments", "api.py")) as handle:
        tree = ast.parse(handle.read())
    texts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ModuleDocFragment":
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                    texts[item.targets[0].id] = ast.literal_eval(item.value)
    assert "ACTIONGROUP" in texts, "plugins/doc_fragments/api.py has no ACTIONGROUP fragment"
    doc = yaml.safe_load(texts["ACTIONGROUP"])
    assert doc["attributes"]["action_group"]["membership"] == ["%s.%s" % (NAMESPACE_NAME, ACTION_GROUP)]
    assert doc["attributes"]["action_group"]["support"] == "full"


@pytest.mark.parametrize("module", api_modules())
def test_module_documents_its_action_group_through_the_fragment(module):
    path = os.path.join(ROOT, "plugins", "modules", module + ".py")
    doc = yaml.safe_load(literal(path, "DOCUMENTATION"))
    fragments = doc.get("extends_documentation_fragment") or []
    if isinstance(fragments, str):
        fragments = [fragments]
    assert ACTIONGROUP_FRAGMENT in fragments, (
        "%s: DOCUMENTATION must list %s in extends_documentation_fragment (attributes.action_group)"
        % (module, ACTIONGROUP_FRAGMENT))
    assert "action_group" not in (doc.get("attributes") or {}), (
        "%s: attributes.action_group comes from the fragment; do not redefine it" % module)


def test_galaxy_version_is_the_user_agent_version():
    galaxy = read_yaml("galaxy.yml")
    version = literal(os.path.join(ROOT, "plugins", "module_utils", "_api.py"), "COLLECTION_VERSION")
    assert str(galaxy["version"]) == version, (
        "galaxy.yml version %s differs from COLLECTION_VERSION %s in plugins/module_utils/_api.py "
        "(sent in the User-Agent): change both together" % (galaxy["version"], version))


def test_requires_ansible_is_the_lowest_ansible_core_tested():
    runtime = read_yaml("meta", "runtime.yml")
    spec = str(runtime.get("requires_ansible") or "")
    bounds = [part.strip() for part in spec.split(",")]
    lower = [part[2:].strip() for part in bounds if part.startswith(">=")]
    assert len(lower) == 1, "requires_ansible %r in meta/runtime.yml has no single '>=X.Y.Z' bound" % spec
    lowest = min((core for core, _python in controllers_under_test()), key=version_tuple)
    required = version_tuple(lower[0])
    assert required[:2] == version_tuple(lowest)[:2] and required <= version_tuple(lowest), (
        "meta/runtime.yml requires_ansible %r, but the lowest ansible-core tested (CONTROLLERS in "
        "noxfile.py) is %s: set requires_ansible to '>=%s.0' or test the version it claims"
        % (spec, lowest, ".".join(lowest.split(".")[:2])))


def test_roles_claim_the_same_minimum_ansible():
    lowest = min((core for core, _python in controllers_under_test()), key=version_tuple)
    wrong = {}
    for meta in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "main.yml"))):
        with open(meta) as handle:
            info = (yaml.safe_load(handle) or {}).get("galaxy_info") or {}
        claimed = str(info.get("min_ansible_version", ""))
        if claimed and version_tuple(claimed)[:2] != version_tuple(lowest)[:2]:
            wrong[os.path.relpath(meta, ROOT)] = claimed
    assert not wrong, (
        "min_ansible_version differs from the lowest ansible-core tested (%s): %s"
        % (".".join(lowest.split(".")[:2]), wrong))


def test_no_python_dependency_is_declared():
    # The modules speak HTTP with the standard library (plugins/module_utils/_api.py): nothing for pip to install.
    for name in ("requirements.txt", os.path.join("meta", "execution-environment.yml"), "bindep.txt"):
        assert not os.path.exists(os.path.join(ROOT, name)), "%s declares a dependency the collection does not have" % name
