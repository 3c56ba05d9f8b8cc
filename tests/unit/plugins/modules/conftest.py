# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the module tests: the scripted Latitude API and a module runner."""

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.latitudesh.cloud.plugins.module_utils import _api_retry
from ansible_collections.latitudesh.cloud.plugins.module_utils._api import LatitudeClient
from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import (
    API_URL,
    AUTH_TOKEN,
    AnsibleExitJson,
    AnsibleFailJson,
    FakeLatitudeAPI,
)


@pytest.fixture
def api(monkeypatch):
    """The scripted API; also stops real sleeping and clears the connection environment."""
    for name in ("LATITUDESH_AUTH_TOKEN", "LATITUDESH_BEARER", "LATITUDESH_TOKEN", "LATITUDESH_API_URL",
                 "LATITUDESH_API_TIMEOUT", "LATITUDESH_API_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeLatitudeAPI()

    def exchange(client, method, path, body, deadline):
        return fake(client, method, path, body, deadline)

    monkeypatch.setattr(LatitudeClient, "_exchange", exchange)
    monkeypatch.setattr(_api_retry, "backoff", lambda attempt, rand=None: 0.0)
    yield fake
    fake.verify()


def _exit_json(self, *args, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, *args, **kwargs):
    if args:
        kwargs.setdefault("msg", args[0])
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


@pytest.fixture
def module_runner(monkeypatch):
    """``run(main, args, check_mode=False, diff=False)`` -> ("exit"|"fail", result)."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(main, args, check_mode=False, diff=False, auth=True):
        module_args = dict(api_url=API_URL)
        if auth:
            module_args["auth_token"] = AUTH_TOKEN
        module_args.update(args)
        if check_mode:
            module_args["_ansible_check_mode"] = True
        if diff:
            module_args["_ansible_diff"] = True
        with patch_module_args(module_args):
            try:
                main()
            except AnsibleExitJson as exc:
                return "exit", exc.args[0]
            except AnsibleFailJson as exc:
                return "fail", exc.args[0]
        raise AssertionError("the module returned without calling exit_json or fail_json")

    return run
