# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""docs/reference is what render_docs.py renders, and render_docs.py itself behaves.

ansible-doc's text differs between ansible-core versions: the rendering tests run only on the
pinned ansible-core minor (render_docs.PINNED_CORE) and skip elsewhere.
"""

from __future__ import absolute_import, division, print_function

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "packaging", "render_docs.py")
REFERENCE = os.path.join(ROOT, "docs", "reference")


def load_render_docs():
    spec = importlib.util.spec_from_file_location("render_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_docs = load_render_docs()


def running_core():
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel
    return __version__


def minor(version):
    return version.split(".")[:2]


needs_pinned_minor = pytest.mark.skipif(
    minor(running_core()) != minor(render_docs.PINNED_CORE),
    reason="docs/reference is rendered with ansible-core %s and ansible-doc's output differs between "
           "versions; this is ansible-core %s" % (render_docs.PINNED_CORE, running_core()),
)


def run_script(*args):
    extra = [] if running_core() == render_docs.PINNED_CORE else ["--any-version"]
    return subprocess.run([sys.executable, SCRIPT] + list(args) + extra, cwd=ROOT, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=300, check=False)


@needs_pinned_minor
def test_reference_docs_are_up_to_date():
    proc = run_script("--check")
    assert proc.returncode == 0, (
        "docs/reference is out of date; run `python tests/packaging/render_docs.py` with ansible-core %s "
        "and commit the result.\n%s%s" % (render_docs.PINNED_CORE, proc.stdout, proc.stderr))
    assert "ansible-core %s" % running_core() in proc.stdout


@needs_pinned_minor
def test_check_reports_changed_missing_and_stale_files(tmp_path):
    output = str(tmp_path / "reference")
    shutil.copytree(REFERENCE, output)
    with open(os.path.join(output, "module-api_key.md"), "a") as handle:
        handle.write("a hand edit\n")
    os.remove(os.path.join(output, "filter-api_key_plan.md"))
    with open(os.path.join(output, "module-removed_long_ago.md"), "w") as handle:
        handle.write(render_docs.MARKER + " from a module that no longer exists -->\n")
    with open(os.path.join(output, "notes.md"), "w") as handle:
        handle.write("not generated: left alone\n")

    proc = run_script("--check", "--output-dir", output)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "-a hand edit" in proc.stdout
    assert "+++ b/%s/filter-api_key_plan.md" % output in proc.stdout
    assert "--- a/%s/module-removed_long_ago.md" % output in proc.stdout
    assert "notes.md" not in proc.stdout
    assert "is out of date" in proc.stdout

    proc = run_script("--output-dir", output)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(output)) == sorted(os.listdir(REFERENCE) + ["notes.md"])


def test_every_documented_plugin_has_a_page():
    names = sorted(os.listdir(REFERENCE))
    wanted = sorted("%s-%s.md" % (doc_type, name) for doc_type, name, _source in render_docs.doc_items(ROOT))
    assert [name for name in names if name != "README.md"] == wanted
    with open(os.path.join(REFERENCE, "README.md")) as handle:
        index = handle.read()
    assert [name for name in wanted if "](%s)" % name not in index] == []


def test_version_guard():
    pinned = render_docs.PINNED_CORE
    assert render_docs.version_guard(pinned, check=True, any_version=False) is None
    assert render_docs.version_guard("2.99.0", check=True, any_version=True) is None
    refusal = render_docs.version_guard("2.99.0", check=True, any_version=False)
    assert "--any-version" in refusal and pinned in refusal and "2.99.0" in refusal
    assert render_docs.version_guard("2.99.0", check=False, any_version=False) is not None


def test_clean_text_strips_the_local_path():
    root = "/somewhere/ansible_collections/latitudesh/cloud"
    text = "> MODULE latitudesh.cloud.api_key (%s/plugins/modules/api_key.py)   \n\n  Text.  \n\n" % root
    assert render_docs.clean_text(text, root, "module", "api_key") == (
        "> MODULE latitudesh.cloud.api_key (plugins/modules/api_key.py)\n\n  Text.\n")
    role = "> ROLE: *latitudesh.cloud.team_api_keys* (%s)\n" % root
    assert render_docs.clean_text(role, root, "role", "team_api_keys") == (
        "> ROLE: *latitudesh.cloud.team_api_keys* (roles/team_api_keys)\n")
    with pytest.raises(render_docs.RenderError):
        render_docs.clean_text("> MODULE x (%s/a.py)\nsee %s/b\n" % (root, root), root, "module", "x")


def test_fence_is_longer_than_any_backtick_run():
    assert render_docs.fence("plain") == "```"
    assert render_docs.fence("a ```` b") == "`````"
    assert render_docs.without_version(render_docs.MARKER + " (ansible-core 2.21.5). x -->\nbody (ansible-core 1)") == (
        render_docs.MARKER + " (ansible-core *). x -->\nbody (ansible-core 1)")
