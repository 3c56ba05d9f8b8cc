# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ansible-builder sees the installed collection's dependencies, and the EE files in
docs/execution-environment.md make a build context (no container runtime needed for that).

ansible-builder goes into a venv of its own (once per session), never into the venv under test.
"""

from __future__ import absolute_import, division, print_function

import os
import re
import shutil
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = "ansible-builder>=3.0,<4"
GUIDE = os.path.join(ROOT, "docs", "execution-environment.md")


@pytest.fixture(scope="session")
def builder(packaging_tmp, shell):
    """``ansible-builder`` in a venv of its own: ``builder.run(args, cwd)``."""
    venv = os.path.join(packaging_tmp, "builder-venv")
    shell.run([sys.executable, "-m", "venv", venv], env=shell.clean_env())
    shell.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", BUILDER],
              env=shell.clean_env({"VIRTUAL_ENV": venv}), cwd=packaging_tmp)
    executable = os.path.join(venv, "bin", "ansible-builder")

    class Builder(object):
        @staticmethod
        def run(args, cwd):
            return shell.run([executable] + list(args), env=shell.clean_env(), cwd=cwd)

    return Builder()


def guide_files():
    """{file name: text} of the code blocks preceded by ``<!-- file: NAME -->`` in the guide."""
    with open(GUIDE) as handle:
        text = handle.read()
    return dict(re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```", text, re.DOTALL))


def test_introspect_reads_the_installed_collection(builder, installed):
    proc = builder.run(["introspect", "--sanitize", installed.collections_path], cwd=installed.cwd)
    data = yaml.safe_load(proc.stdout)
    # The modules need nothing besides ansible-core and the Python standard library: a build adds nothing for them.
    assert data["python"] == []
    assert data["system"] == []


def test_guide_ee_definition_makes_a_build_context(builder, tarball, packaging_tmp):
    files = guide_files()
    assert sorted(files) == ["execution-environment.yml", "requirements.yml"]
    workdir = os.path.join(packaging_tmp, "ee")
    os.makedirs(workdir)
    for name, text in files.items():
        with open(os.path.join(workdir, name), "w") as handle:
            handle.write(text)
    definition = yaml.safe_load(files["execution-environment.yml"])
    wanted = [item["src"] for item in definition.get("additional_build_files") or []]
    assert wanted == [os.path.basename(tarball)], "the guide copies %s; the build makes %s" % (wanted, tarball)
    shutil.copy(tarball, workdir)

    builder.run(["create", "--file", "execution-environment.yml", "--context", "context",
                 "--output-filename", "Containerfile"], cwd=workdir)
    build = os.path.join(workdir, "context", "_build")
    assert os.path.isfile(os.path.join(build, "collections", os.path.basename(tarball)))
    with open(os.path.join(build, "requirements.yml")) as handle:
        requirements = yaml.safe_load(handle)
    assert requirements["collections"] == [{"name": "collections/" + os.path.basename(tarball), "type": "file"}]
    with open(os.path.join(workdir, "context", "Containerfile")) as handle:
        containerfile = handle.read()
    assert "ansible-galaxy collection install" in containerfile
    assert "COPY _build /build" in containerfile
    match = re.search(r'ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile)
    assert match and "ansible-core>=2.19" in match.group(1), containerfile
