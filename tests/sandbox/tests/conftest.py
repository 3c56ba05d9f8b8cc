# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Makes tests/sandbox importable and provides a fresh in-process sandbox per test."""

import os
import sys

import pytest

SANDBOX_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if SANDBOX_DIR not in sys.path:
    sys.path.insert(0, SANDBOX_DIR)

import latitude_sandbox  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def sandbox():
    """A running sandbox with the default seed (teams ``platform`` and ``data``)."""
    with latitude_sandbox.Sandbox() as running:
        yield running


@pytest.fixture
def control(sandbox):
    """The control API client of ``sandbox``."""
    return sandbox.control
