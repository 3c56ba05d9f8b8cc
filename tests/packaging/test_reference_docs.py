# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""docs/reference has one antsibull-docs page per module, filter and role, and an index linking them.

That the pages are what antsibull-docs renders today is checked by the ``reference`` nox session of
``make test`` (``make reference`` rewrites them); this test needs no antsibull-docs.
"""

from __future__ import absolute_import, division, print_function

import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE = os.path.join(ROOT, "docs", "reference")


def documented_items():
    """'<name>_<type>.rst' for every module (.py), filter or test (.yml doc) and role of the collection."""
    pages = []
    for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        if os.path.basename(path) != "__init__.py":
            pages.append("%s_module.rst" % os.path.splitext(os.path.basename(path))[0])
    for plugin_type in ("filter", "test"):
        for path in glob.glob(os.path.join(ROOT, "plugins", plugin_type, "*.yml")):
            pages.append("%s_%s.rst" % (os.path.splitext(os.path.basename(path))[0], plugin_type))
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        pages.append("%s_role.rst" % os.path.basename(os.path.dirname(os.path.dirname(path))))
    return sorted(pages)


def test_every_documented_plugin_has_a_page():
    wanted = documented_items()
    assert wanted, "found no module, filter or role to document"
    names = sorted(os.listdir(REFERENCE))
    assert [name for name in names if name != "index.rst"] == wanted, "run `make reference` and commit docs/reference"
    with open(os.path.join(REFERENCE, "index.rst")) as handle:
        index = handle.read()
    assert [name for name in wanted if "<%s>`_" % name not in index] == []
