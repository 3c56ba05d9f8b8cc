# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fault matrix: each API or transport failure ends in success or in a one-paragraph message.

Each case runs one task through ansible-playbook against its own sandbox with fault rules
installed, then checks the result, the message (one line, no traceback) and the requests the
sandbox logged: what was retried, and how often.
"""

import secrets

import pytest

from harness import API, ITEM, Scenario, api_request, closed_port, run_parallel, run_scenario, selected, verify

pytestmark = pytest.mark.fault

INFO = {"latitudesh.cloud.api_key_info": {}}
CREATE = {"latitudesh.cloud.api_key": {"name": "build-agent"}}


def fault(method, kind, path=API, **extra):
    return dict(method=method, path=path, kind=kind, **extra)


def lists_seed_keys(outcome):
    names = [key["name"] for key in outcome.result["result"]["api_keys"]]
    assert names == ["admin", "ci-deployer", "monitoring"], names


def nothing_created(outcome):
    assert outcome.keys_named("build-agent") == [], outcome.describe()


def monitoring_writable(outcome):
    assert outcome.keys_named("monitoring")[0]["read_only"] is False


def ci_deployer_gone(outcome):
    assert outcome.keys_named("ci-deployer") == []
    assert outcome.result["result"]["api_key"] == {}


def statuses(outcome, method):
    return [entry["status"] for entry in outcome.log if entry["method"] == method]


def delete_retry_404(outcome):
    ci_deployer_gone(outcome)
    assert statuses(outcome, "DELETE") == [None, 404], outcome.describe()


def delete_ci_deployer_first(sandbox):
    """Delete ci-deployer behind the module's back; return its (now stale) id."""
    key_id = sandbox.key("ci-deployer")["id"]
    status, _body = api_request(sandbox, "DELETE", API + "/" + key_id, sandbox.admin_token())
    assert status == 200
    return {"id": key_id}


def bogus_token(_sandbox):
    return secrets.token_hex(18)


def read_only_token(sandbox):
    return sandbox.key("monitoring")["token"]


UNPROCESSABLE = (
    '{"errors":[{"code":"unprocessable_entity","status":"422","title":"Unprocessable Entity",'
    '"detail":"Name is too long (maximum is 64 characters)","source":{"pointer":"/data/attributes/name"},'
    '"meta":{"attribute":"name"}}]}'
)

CASES = []
for _status in (500, 502, 503, 504):
    CASES += [
        Scenario("GET-%d-once-retried-then-ok" % _status, INFO, [fault("GET", "status", status=_status)],
                 expect="ok", api_retries=2, requests={"GET": 2}, check=lists_seed_keys),
        Scenario("GET-%d-beyond-api_retries-fails" % _status, INFO,
                 [fault("GET", "status", status=_status, times=2)], api_retries=1,
                 msg=[r"HTTP %d" % _status, r"kept failing after 2 attempt"], requests={"GET": 2}),
    ]
CASES += [
    Scenario("POST-500-sent-once-fails", CREATE, [fault("POST", "status", status=500)],
             msg=[r"HTTP 500", r"nothing was created"], requests={"POST": 1}, check=nothing_created),
    Scenario("PATCH-500-retried-then-ok", {"latitudesh.cloud.api_key": {"name": "monitoring", "read_only": False}},
             [fault("PATCH", "status", path=ITEM, status=500)], expect="changed", requests={"PATCH": 2},
             check=monitoring_writable),
    Scenario("DELETE-500-retried-then-ok", {"latitudesh.cloud.api_key": {"name": "ci-deployer", "state": "absent"}},
             [fault("DELETE", "status", path=ITEM, status=500)], expect="changed", requests={"DELETE": 2},
             check=ci_deployer_gone),
    Scenario("DELETE-dropped-after-apply-retry-404-counts-as-deleted",
             {"latitudesh.cloud.api_key": {"name": "ci-deployer", "state": "absent"}},
             [fault("DELETE", "drop_after_apply", path=ITEM)], expect="changed", requests={"DELETE": 2},
             check=delete_retry_404),
    Scenario("connection-refused", INFO, api_retries=1,
             api_url=lambda sandbox: "http://127.0.0.1:%d" % closed_port(),
             msg=[r"could not connect to http://127\.0\.0\.1:\d+"], requests={"GET": 0}),
    Scenario("read-timeout-once-retried-then-ok", INFO, [fault("GET", "delay", seconds=2)], expect="ok",
             api_timeout=1, api_retries=1, settle=1.5, requests={"GET": 2}, check=lists_seed_keys),
    Scenario("read-timeout-beyond-api_retries-fails", INFO, [fault("GET", "delay", seconds=2.5, times=2)],
             api_timeout=1, api_retries=1, settle=2.5, msg=[r"no answer within api_timeout=1 s"],
             requests={"GET": 2}),
    Scenario("GET-malformed-json", INFO, [fault("GET", "malformed_json")],
             msg=[r"HTTP 200", r"not valid JSON"], msg_not=[r"may have been applied"], requests={"GET": 1}),
    Scenario("GET-html-502-once-retried-then-ok", INFO, [fault("GET", "html_502")], expect="ok",
             api_retries=1, requests={"GET": 2}, check=lists_seed_keys),
    Scenario("GET-html-502-beyond-api_retries-fails", INFO, [fault("GET", "html_502", times=2)], api_retries=1,
             msg=[r"HTTP 502", r"HTML", r"502 Bad Gateway"], requests={"GET": 2}),
    Scenario("GET-empty-body", INFO, [fault("GET", "empty_body")], msg=[r"GET /auth/api_keys", r"not understood"],
             requests={"GET": 1}),
    Scenario("HTTP-401-bad-token", INFO, auth=bogus_token,
             msg=[r"HTTP 401", r"Authentication failed", r"auth_token", r"LATITUDESH_AUTH_TOKEN"],
             requests={"GET": 1}),
    Scenario("HTTP-403-read-only-token", CREATE, auth=read_only_token,
             msg=[r"HTTP 403", r"read-only"], msg_not=[r"may have been applied"],
             requests={"GET": 1, "POST": 1}, check=nothing_created),
    Scenario("HTTP-404-stale-id-deleted-before-the-run",
             lambda context: {"latitudesh.cloud.api_key": {"id": context["id"], "read_only": True}},
             setup=delete_ci_deployer_first, msg=[r"No API key with id tok_\w+ exists"],
             requests={"GET": 1, "PATCH": 0}),
    Scenario("HTTP-404-key-deleted-between-list-and-PATCH",
             {"latitudesh.cloud.api_key": {"name": "ci-deployer", "read_only": True}},
             [fault("PATCH", "status", path=ITEM, status=404)],
             msg=[r"PATCH /auth/api_keys/tok_\w+", r"HTTP 404", r"Specified Record Not Found"],
             requests={"PATCH": 1}),
    Scenario("HTTP-422-with-source-pointer", CREATE,
             [fault("POST", "status", status=422, body=UNPROCESSABLE)],
             msg=[r"HTTP 422", r"Name is too long", r"/data/attributes/name"],
             msg_not=[r"may have been applied"], requests={"POST": 1}, check=nothing_created),
]

# None of these failures changed anything, and the result says so.
for _case in CASES:
    if _case.expect == "failed":
        _case.changed = False


@pytest.fixture(scope="module")
def outcomes(artifacts, runner, request):
    return run_parallel(lambda scenario: run_scenario(artifacts, runner, scenario), selected(request, "scenario"))


@pytest.mark.parametrize("scenario", CASES, ids=[case.id for case in CASES])
def test_fault(scenario, outcomes):
    verify(outcomes[scenario.id])
