# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the collection tarball and install it: the one way the packaging tests, the demo and the
benchmark do it (``build``, ``install``, ``build_and_install``).

``ansible-galaxy`` runs as ``<python> -m ansible galaxy``, by default with the running Python, so
the ansible-core of the caller's virtualenv builds and installs. Stdlib only.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BuildError(Exception):
    """``ansible-galaxy`` failed; the message holds its output."""


def _galaxy(args, python=None, env=None, cwd=None):
    argv = [python or sys.executable, "-m", "ansible", "galaxy", "collection"] + list(args)
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if done.returncode != 0:
        raise BuildError("ansible-galaxy collection %s failed (exit %d):\n%s" % (args[0], done.returncode, done.stdout))
    return done.stdout


def tarball_name(source=ROOT):
    """``<namespace>-<name>-<version>.tar.gz`` from ``source``/galaxy.yml (read without a YAML parser)."""
    with open(os.path.join(source, "galaxy.yml"), encoding="utf-8") as handle:
        text = handle.read()
    fields = []
    for field in ("namespace", "name", "version"):
        match = re.search(r"^%s:\s*['\"]?([^'\"\s#]+)" % field, text, re.M)
        if not match:
            raise BuildError("galaxy.yml in %s has no %s" % (source, field))
        fields.append(match.group(1))
    return "%s-%s-%s.tar.gz" % tuple(fields)


def build(output_dir, source=ROOT, python=None, env=None):
    """``ansible-galaxy collection build`` of ``source`` into ``output_dir``; the tarball's path."""
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    tarball = os.path.join(output_dir, tarball_name(source))
    if os.path.exists(tarball):
        os.remove(tarball)
    _galaxy(["build", "--force", "--output-path", output_dir, os.path.abspath(source)], python, env, cwd=output_dir)
    if not os.path.exists(tarball):
        raise BuildError("ansible-galaxy collection build wrote no %s" % tarball)
    return tarball


def install(tarball, collections_path, python=None, env=None, cwd=None):
    """``ansible-galaxy collection install`` of ``tarball`` into ``collections_path`` (replacing an older
    install, without dependencies); return ``collections_path``."""
    collections_path = os.path.abspath(collections_path)
    os.makedirs(collections_path, exist_ok=True)
    _galaxy(["install", "--force", "--no-deps", "-p", collections_path, tarball], python, env, cwd=cwd)
    return collections_path


def build_and_install(work, source=ROOT, python=None, env=None):
    """Build into ``work``/dist and install into ``work``/collections; return the collections path."""
    tarball = build(os.path.join(work, "dist"), source, python, env)
    return install(tarball, os.path.join(work, "collections"), python, env)
