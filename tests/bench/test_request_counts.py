# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The request-count part of the benchmark as a test: every operation sends exactly the
requests that ``tests/bench/run.py`` expects of it (the minimum, except where a row says why not).

Starts its own sandbox (no latency) and runs one playbook with ``ansible-playbook`` from PATH
(else from beside this Python). The collection comes from ANSIBLE_COLLECTIONS_PATH; when that is
unset, the collection is built from this tree and installed in a temporary directory.
"""

import importlib.util
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("latitudesh_bench_run", os.path.join(HERE, "run.py"))
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def ansible_bin_dir():
    found = shutil.which("ansible-playbook")
    if found:
        return os.path.dirname(os.path.abspath(found))
    return os.path.dirname(sys.executable)


def collections_path(work, bin_dir):
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
    if configured:
        for entry in configured.split(os.pathsep):
            if os.path.isdir(os.path.join(entry, "ansible_collections", "latitudesh", "cloud")):
                return configured
        pytest.fail("ANSIBLE_COLLECTIONS_PATH=%s holds no latitudesh.cloud collection" % configured)
    return bench.prepare_collection(str(work), bin_dir)


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench-counts")
    bin_dir = ansible_bin_dir()
    if not os.path.exists(os.path.join(bin_dir, "ansible-playbook")):
        pytest.fail("ansible-playbook is neither on PATH nor beside %s" % sys.executable)
    path = collections_path(work, bin_dir)
    with bench.Sandbox(str(work / "sandbox"), latency_ms=0) as sandbox:
        ansible = bench.Ansible(str(work), path, bin_dir, sandbox.url)
        yield bench.run_counts(sandbox, ansible)


@pytest.mark.parametrize("scenario", bench.COUNT_SCENARIOS, ids=[scenario.ident for scenario in bench.COUNT_SCENARIOS])
def test_requests_per_operation(counted, scenario):
    result = counted[scenario.ident]
    assert not result["errors"], "%s: failed requests %r" % (scenario.label, result["errors"])
    assert result["counts"] == scenario.expected, "%s sent %s, expected %s" % (
        scenario.label, bench.describe_counts(result["counts"]), bench.describe_counts(scenario.expected))


def test_gated_operations_send_the_minimum():
    """Only a scenario documented as not gated may expect more than the minimum."""
    for scenario in bench.COUNT_SCENARIOS:
        if scenario.gated:
            assert scenario.expected == scenario.minimum, scenario.ident
