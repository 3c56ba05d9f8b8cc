# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest plugin: the sandbox CLI (``latitude_sandbox.py``) as a child process on a free loopback port.

Fixtures:

* ``start_sandbox(args=(), work_dir=None, output=None, tls=None)`` (session): starts one more
  sandbox with those CLI options and returns the running ``latitude_sandbox.SandboxProcess``
  (``.url``, ``.control``, ``.proc``, ``.stop()``). Safe from threads. Whatever a test leaves
  running stops when the session ends.
* ``sandbox_process``: a sandbox with the default seed (teams ``platform`` and ``data``) for one
  test, stopped after it; its output is in ``sandbox.out`` in the test's temporary directory.

A suite loads it from its conftest.py, with tests/sandbox on ``sys.path``::

    import pytest_plugin

    def pytest_configure(config):
        pytest_plugin.register(config)

or from the command line: ``PYTHONPATH=tests/sandbox pytest -p pytest_plugin ...``.
"""

import os
import sys
import threading

import pytest

SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__))
if SANDBOX_DIR not in sys.path:
    sys.path.insert(0, SANDBOX_DIR)

import latitude_sandbox  # noqa: E402  pylint: disable=wrong-import-position

PLUGIN_NAME = "latitudesh-sandbox"


def register(config):
    """Register this module as a pytest plugin (once per session)."""
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(sys.modules[__name__], PLUGIN_NAME)


class SandboxStarter(object):
    """Starts sandboxes and remembers them, to stop every one that is still running at the end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._children = []

    def __call__(self, args=(), work_dir=None, output=None, tls=None):
        child = latitude_sandbox.SandboxProcess(list(args), work_dir=work_dir, output=output, tls=tls)
        with self._lock:
            self._children.append(child)
        return child.start()

    def stop_all(self):
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.stop()


@pytest.fixture(scope="session")
def start_sandbox():
    """``start_sandbox(args=(), work_dir=None, output=None, tls=None)`` -> a running SandboxProcess."""
    starter = SandboxStarter()
    yield starter
    starter.stop_all()


@pytest.fixture
def sandbox_process(start_sandbox, tmp_path):  # pylint: disable=redefined-outer-name
    """A sandbox with the default seed for this test."""
    child = start_sandbox(work_dir=str(tmp_path), output=str(tmp_path / "sandbox.out"))
    yield child
    child.stop()
