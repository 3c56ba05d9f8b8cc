# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ambiguous writes: a create (POST) or rotate (PUT) whose answer never arrives in usable form.

The module must never send the POST or PUT twice, must tell whether a key now exists, and must
leave at most one key with the name. Every case runs ``api_key`` through ansible-playbook against
its own sandbox; the request counts come from the sandbox's request log.
"""

import pytest

from harness import API, ITEM, Scenario, run_parallel, run_scenario, selected, verify

pytestmark = pytest.mark.fault

NAME = "build-agent"
CREATE = {"latitudesh.cloud.api_key": {"name": NAME}}
ROTATE = {"latitudesh.cloud.api_key": {"name": "ci-deployer", "state": "regenerated"}}
# What the module says when it knows the key was made (§1 of the issue).
CREATED = [r"was created \(id tok_", r"token was not received", r"state=regenerated"]
NOTHING_CREATED = [r"nothing was created", r"safe to run the task again"]
# After a gateway error, a timeout or a lost answer the API may still apply the POST: a list that
# does not show the key proves nothing, so the message sends the user to wait and list first.
MAY_STILL_APPLY = [r"may still apply the request", r"Do not run the task again at once: wait",
                   r"latitudesh\.cloud\.api_key_info", r"If two keys named 'build-agent' exist afterwards"]
ROTATED_MAYBE = [r"may have been rotated", r"old token may already be invalid", r"state=regenerated"]


def rerun(task_args):
    """The follow-up run that the failure message advises (token shown: the sanctioned return)."""
    return [{"name": "rerun", "latitudesh.cloud.api_key": task_args}]


def created_once(outcome):
    keys = outcome.keys_named(NAME)
    assert len(keys) == 1, "expected exactly one %r key, found %d\n%s" % (NAME, len(keys), outcome.describe())
    assert keys[0]["id"] in outcome.msg, "the message does not name the new key's id %s: %r" % (keys[0]["id"], outcome.msg)


def one_key(outcome):
    assert len(outcome.keys_named(NAME)) == 1, outcome.describe()


def nothing_created(outcome):
    assert outcome.keys_named(NAME) == [], outcome.describe()


def created_then_regenerated(outcome):
    """The advised re-run rotates the one key, returns its token and creates no second key."""
    created_once(outcome)
    first_state_key = outcome.keys_named(NAME, state=outcome.states[0])[0]
    rerun_result = outcome.runs[1].task("rerun")
    assert rerun_result["status"] == "changed", outcome.describe()
    key = outcome.keys_named(NAME)[0]
    assert key["id"] == first_state_key["id"]
    assert rerun_result["result"]["token"] == key["token"] != first_state_key["token"]
    assert outcome.count("POST", outcome.logs[1]) == 0
    assert outcome.count("PUT", outcome.logs[1]) == 1


def created_then_rerun(outcome):
    """After "nothing was created", running the task again creates exactly one key."""
    assert outcome.keys_named(NAME, state=outcome.states[0]) == []
    rerun_result = outcome.runs[1].task("rerun")
    assert rerun_result["status"] == "changed", outcome.describe()
    keys = outcome.keys_named(NAME)
    assert len(keys) == 1 and rerun_result["result"]["token"] == keys[0]["token"]
    assert outcome.count("POST", outcome.logs[1]) == 1


def rotated(outcome):
    """The PUT was applied: one ci-deployer key, with a new token that nobody received."""
    before = outcome.keys_named("ci-deployer", state=outcome.before)
    after = outcome.keys_named("ci-deployer", state=outcome.states[0])
    assert len(after) == 1 and after[0]["id"] == before[0]["id"]
    assert after[0]["token"] != before[0]["token"], "the fault should have let the rotation through"


def not_rotated(outcome):
    before = outcome.keys_named("ci-deployer", state=outcome.before)
    after = outcome.keys_named("ci-deployer", state=outcome.states[0])
    assert len(after) == 1 and after[0]["token"] == before[0]["token"]


def rotated_then_regenerated(outcome):
    rotated(outcome)
    rerun_result = outcome.runs[1].task("rerun")
    assert rerun_result["status"] == "changed", outcome.describe()
    key = outcome.keys_named("ci-deployer")[0]
    assert rerun_result["result"]["token"] == key["token"]
    assert outcome.count("PUT", outcome.logs[1]) == 1


def fault(method, kind, path=API, **extra):
    return dict(method=method, path=path, kind=kind, **extra)


CASES = [
    # ----- create: the POST was applied, its answer lost -----
    Scenario(
        "create-connection-dropped-after-apply", CREATE, [fault("POST", "drop_after_apply")],
        msg=CREATED, requests={"POST": 1, "GET": 2}, check=created_then_regenerated,
        steps=[rerun({"name": NAME, "state": "regenerated"})], changed=True,
    ),
    Scenario(
        # The POST is applied 3 s after it arrives; the client gives up after 2 s; the second
        # list is held 1.5 s, so it sees the key.
        "create-read-timeout-applied-before-relist", CREATE,
        [fault("GET", "delay", seconds=0), fault("POST", "delay", seconds=3), fault("GET", "delay", seconds=1.5)],
        api_timeout=2, msg=CREATED + [r"api_timeout=2"], requests={"POST": 1, "GET": 2}, check=created_once,
        changed=True,
    ),
    Scenario(
        # The POST is applied 4 s after it arrives, long after the client listed the keys again:
        # the module cannot know whether a key will appear and must not call a re-run safe.
        "create-read-timeout-applied-after-relist", CREATE, [fault("POST", "delay", seconds=4)],
        api_timeout=1, settle=4, msg=[r"regenerated|api_key_info"],
        msg_not=[r"nothing was created", r"safe to run the task again"],
        requests={"POST": 1}, check=one_key, changed=True,
    ),
    Scenario(
        "create-gateway-503-after-apply", CREATE, [fault("POST", "empty_body", status=503)],
        msg=CREATED + [r"HTTP 503"], requests={"POST": 1, "GET": 2}, check=created_once, changed=True,
    ),
    Scenario(
        "create-malformed-json-after-apply", CREATE, [fault("POST", "malformed_json")],
        msg=CREATED + [r"not valid JSON"], requests={"POST": 1, "GET": 2}, check=created_once, changed=True,
    ),
    Scenario(
        "create-empty-body-after-apply", CREATE, [fault("POST", "empty_body")],
        msg=CREATED + [r"empty body"], requests={"POST": 1, "GET": 2}, check=created_once, changed=True,
    ),
    # ----- create: the POST was not applied -----
    Scenario(
        # The module cannot tell this from a POST still on its way: it must not call a re-run safe.
        # Once the key is still not listed, the advised re-run makes exactly one key.
        "create-connection-dropped-before-apply", CREATE, [fault("POST", "drop_before_apply")],
        msg=MAY_STILL_APPLY, msg_not=NOTHING_CREATED + [r"was created \(id"], requests={"POST": 1, "GET": 2},
        check=created_then_rerun, steps=[rerun({"name": NAME})], changed=True,
    ),
    Scenario(
        # A gateway answers 504 at once and passes the POST on 4 s later, after the module listed
        # the keys again: a re-run at once would make a second key of the name.
        "create-gateway-504-applied-later", CREATE, [fault("POST", "gateway_504_apply_later", seconds=4)],
        settle=5, msg=MAY_STILL_APPLY + [r"HTTP 504"], msg_not=NOTHING_CREATED + [r"was created \(id"],
        requests={"POST": 1, "GET": 2}, check=one_key, changed=True,
    ),
    Scenario(
        "create-http-500-not-applied", CREATE, [fault("POST", "status", status=500)],
        msg=NOTHING_CREATED + [r"HTTP 500"], msg_not=[r"was created \(id"], requests={"POST": 1, "GET": 2},
        check=nothing_created, changed=False,
    ),
    Scenario(
        # The answer is lost and the check that follows fails too: the module cannot tell, so it
        # must send the user to list the keys, never call a re-run safe.
        "create-dropped-and-relist-fails", CREATE,
        [fault("GET", "delay", seconds=0), fault("POST", "drop_after_apply"),
         fault("GET", "status", status=500, times=2)], api_retries=1,
        msg=[r"api_key_info", r"duplicate"], msg_not=[r"safe to run the task again"],
        requests={"POST": 1, "GET": 3}, check=one_key, changed=True,
    ),
    # ----- rotate: one PUT, never repeated -----
    Scenario(
        "rotate-connection-dropped-after-apply", ROTATE, [fault("PUT", "drop_after_apply", path=ITEM)],
        msg=ROTATED_MAYBE, requests={"PUT": 1, "POST": 0}, check=rotated_then_regenerated,
        steps=[rerun({"name": "ci-deployer", "state": "regenerated"})], changed=True,
    ),
    Scenario(
        "rotate-read-timeout", ROTATE, [fault("PUT", "delay", path=ITEM, seconds=2.5)], api_timeout=1, settle=2,
        msg=ROTATED_MAYBE + [r"api_timeout=1"], requests={"PUT": 1, "POST": 0}, check=rotated, changed=True,
    ),
    Scenario(
        "rotate-http-500", ROTATE, [fault("PUT", "status", path=ITEM, status=500)],
        msg=ROTATED_MAYBE + [r"HTTP 500"], requests={"PUT": 1, "POST": 0}, check=not_rotated, changed=True,
    ),
    Scenario(
        "rotate-malformed-json-after-apply", ROTATE, [fault("PUT", "malformed_json", path=ITEM)],
        msg=ROTATED_MAYBE, requests={"PUT": 1, "POST": 0}, check=rotated, changed=True,
    ),
    Scenario(
        "rotate-empty-body-after-apply", ROTATE, [fault("PUT", "empty_body", path=ITEM)],
        msg=ROTATED_MAYBE, requests={"PUT": 1, "POST": 0}, check=rotated, changed=True,
    ),
    Scenario(
        # The PUT is applied 3 s after a gateway answered 504: a rotation sent at once would get a
        # token that this late one makes invalid, so the message says to wait and check.
        "rotate-gateway-504-applied-later", ROTATE, [fault("PUT", "gateway_504_apply_later", path=ITEM, seconds=3)],
        settle=4, msg=ROTATED_MAYBE + [r"HTTP 504", r"wait a few minutes", r"token_last_slice"],
        requests={"PUT": 1, "POST": 0}, check=rotated, changed=True,
    ),
    Scenario(
        "rotate-connection-dropped-before-apply", ROTATE, [fault("PUT", "drop_before_apply", path=ITEM)],
        msg=ROTATED_MAYBE, requests={"PUT": 1, "POST": 0}, check=not_rotated, changed=True,
    ),
]


@pytest.fixture(scope="module")
def outcomes(artifacts, runner, request):
    return run_parallel(lambda scenario: run_scenario(artifacts, runner, scenario), selected(request, "scenario"))


@pytest.mark.parametrize("scenario", CASES, ids=[case.id for case in CASES])
def test_ambiguous_write(scenario, outcomes):
    outcome = outcomes[scenario.id]
    verify(outcome)
    # Whatever happened, the sandbox never holds two keys of the name this case wrote.
    assert len(outcome.keys_named(NAME)) <= 1
    assert len(outcome.keys_named("ci-deployer")) == 1
