# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark helper callback: records when each task starts and when the playbook ends.

Enabled only by tests/bench/run.py (ANSIBLE_CALLBACKS_ENABLED=bench_timer); writes JSON to
the file named by BENCH_TIMER_FILE. Not part of the collection's public plugins.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._record = {"start": time.time(), "tasks": [], "end": None}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._record["tasks"].append([task.get_name(), time.time()])

    def v2_playbook_on_handler_task_start(self, task):
        self._record["tasks"].append([task.get_name(), time.time()])

    def v2_playbook_on_stats(self, stats):
        self._record["end"] = time.time()
        path = os.environ.get("BENCH_TIMER_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump(self._record, handle)
