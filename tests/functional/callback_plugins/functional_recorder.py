# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test-only callback: append every task result, as Ansible hands it to callbacks, to a JSON-lines file.

Enabled by tests/functional/conftest.py with ANSIBLE_CALLBACK_PLUGINS, ANSIBLE_CALLBACKS_ENABLED and
FUNCTIONAL_RECORD=<file>. Results arrive already censored for ``no_log``, so the file holds exactly
what any callback (and therefore any log) could see; the leak scan reads it like stdout.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: functional_recorder
type: aggregate
short_description: Record task results as JSON lines for the functional tests
description:
  - Test-only. Writes one JSON object per task result to the file named by E(FUNCTIONAL_RECORD).
requirements:
  - enable in ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "functional_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get("FUNCTIONAL_RECORD")
        self._started = {}

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, status, result):
        if not self._path:
            return
        task = result.task
        started = self._started.pop((result.host.get_name(), task._uuid), None)
        entry = {
            "task": result.task_name,
            "action": task.action,
            "status": status,
            "ignore_errors": bool(task.ignore_errors),
            "duration": None if started is None else round(time.monotonic() - started, 3),
            "result": result.result,
        }
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str, sort_keys=True) + "\n")

    def v2_runner_on_ok(self, result):
        self._record("changed" if result.result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("failed", result)

    def v2_runner_on_skipped(self, result):
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._record("unreachable", result)
