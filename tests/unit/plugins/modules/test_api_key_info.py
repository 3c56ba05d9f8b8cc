# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the api_key_info module: one GET, client-side filters, never a token."""

import json

import pytest

from ansible_collections.latitudesh.cloud.plugins.modules import api_key_info

from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import (
    AUTH_TOKEN,
    NEW_TOKEN,
    PATH,
    http_response,
    key_resource,
    list_answer,
    normalized,
)

A = key_resource("tok_a00000000001", "ci-deployer", allowed_ips=["10.0.0.0/24"], token_last_slice="aaaaa")
B = key_resource("tok_b00000000001", "monitoring", read_only=None, allowed_ips=None, token_last_slice="bbbbb")
C = key_resource("tok_c00000000001", "ci-deployer", read_only=True, token_last_slice="ccccc")


@pytest.fixture
def run(module_runner):
    def runner(args, outcome="exit", **kwargs):
        kind, result = module_runner(api_key_info.main, args, **kwargs)
        assert kind == outcome, result
        assert AUTH_TOKEN not in json.dumps(result)
        return result
    return runner


def test_lists_every_key(api, run):
    api.expect("GET", PATH, None, list_answer(A, B, C))
    result = run({})
    assert result["changed"] is False
    assert result["api_keys"] == [normalized(A), normalized(B), normalized(C)]
    assert result["api_keys"][1]["read_only"] is False
    assert result["api_keys"][1]["allowed_ips"] == []
    assert api.exchange == [("GET", PATH)]


def test_empty_team(api, run):
    api.expect("GET", PATH, None, list_answer())
    assert run({})["api_keys"] == []


@pytest.mark.parametrize("args, ids", [
    (dict(id="tok_b00000000001"), ["tok_b00000000001"]),
    (dict(id="tok_zzz"), []),
    (dict(name="ci-deployer"), ["tok_a00000000001", "tok_c00000000001"]),
    (dict(name="CI-deployer"), []),
    (dict(name="monitoring"), ["tok_b00000000001"]),
    (dict(id="tok_c00000000001", name="ci-deployer"), ["tok_c00000000001"]),
    (dict(id="tok_b00000000001", name="ci-deployer"), []),
])
def test_filters(api, run, args, ids):
    api.expect("GET", PATH, None, list_answer(A, B, C))
    result = run(args)
    assert [key["id"] for key in result["api_keys"]] == ids
    assert api.exchange == [("GET", PATH)]


def test_never_returns_a_token_even_if_the_api_lists_one(api, run):
    leaky = key_resource("tok_d00000000001", "leaky", token=NEW_TOKEN, token_last_slice=NEW_TOKEN[-5:])
    api.expect("GET", PATH, None, list_answer(A, leaky))
    result = run({})
    assert NEW_TOKEN not in json.dumps(result)
    for key in result["api_keys"]:
        assert "token" not in key
    assert result["api_keys"][1]["token_last_slice"] == NEW_TOKEN[-5:]


def test_runs_in_check_mode(api, run):
    api.expect("GET", PATH, None, list_answer(A))
    result = run({}, check_mode=True)
    assert result["api_keys"] == [normalized(A)]


def test_retries_the_list_after_a_server_error(api, run):
    api.expect("GET", PATH, None, http_response(502, text="<html>Bad Gateway</html>"))
    api.expect("GET", PATH, None, list_answer(A))
    assert run({})["api_keys"] == [normalized(A)]


@pytest.mark.parametrize("answer, fragment", [
    (http_response(401, {"errors": [{"detail": "Invalid token"}]}), "Authentication failed"),
    (http_response(403, {"errors": [{"detail": "IP not allowed"}]}), "IP not allowed"),
    (http_response(200, {"data": None}), "'data'"),
    (http_response(200, text="not json"), "not valid JSON"),
])
def test_api_failure(api, run, answer, fragment):
    api.expect("GET", PATH, None, answer)
    result = run({}, outcome="fail")
    assert fragment in result["msg"]
    assert api.exchange == [("GET", PATH)]


def test_failure_echoing_the_token_does_not_leak_it(api, run):
    api.expect("GET", PATH, None, http_response(401, {"errors": [{"detail": "bad token %s" % AUTH_TOKEN}]}))
    result = run({}, outcome="fail")
    assert "HTTP 401" in result["msg"]


@pytest.mark.parametrize("args, fragment", [
    (dict(api_url="http://api.example.com"), "plain http"),
    (dict(api_url="ftp://api.example.com"), "api_url"),
    (dict(api_timeout=0), "api_timeout"),
    (dict(api_retries=-2), "api_retries"),
    (dict(auth_token=""), "LATITUDESH_BEARER"),
])
def test_bad_input_fails_before_any_request(api, run, args, fragment):
    result = run(args, outcome="fail")
    assert fragment in result["msg"]
    assert api.calls == []


def test_auth_token_from_environment(api, module_runner, monkeypatch):
    monkeypatch.setenv("LATITUDESH_BEARER", AUTH_TOKEN)
    api.expect("GET", PATH, None, list_answer(A))
    kind, result = module_runner(api_key_info.main, {}, auth=False)
    assert kind == "exit"
    assert result["api_keys"] == [normalized(A)]
