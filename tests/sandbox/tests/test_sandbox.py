# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP-level tests of the Latitude API sandbox, over real 127.0.0.1 sockets."""

import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import latitude_sandbox
from latitude_sandbox import ControlError, Sandbox

JSON_API = "application/vnd.api+json; charset=utf-8"
NOT_FOUND = b'{"errors":[{"code":"not_found","status":"404","title":"Error","detail":"Specified Record Not Found","meta":{}}]}'
UNAUTHORIZED = {"errors": [{"code": "UNAUTHORIZED", "status": "401", "title": "Unauthorized",
                            "detail": "Invalid or missing API token", "meta": {}}]}
READ_ONLY = {"errors": [{"code": "FORBIDDEN", "status": "403", "title": "Forbidden",
                         "detail": "This API key is read-only and cannot perform write operations", "meta": {}}]}
BLANK_NAME = {"errors": [{"code": "unprocessable_entity", "status": "422", "title": "Unprocessable Entity",
                          "detail": "Name can't be blank", "source": {"pointer": "/data/attributes/name"},
                          "meta": {"attribute": "name", "message": "can't be blank"}}]}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
SCRIPT = os.path.join(latitude_sandbox.__file__)


class Response:
    """Status, headers and body of one raw HTTP answer."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)


def _connection(url, timeout=5.0, context=None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _send(conn, method, path, token=None, body=None, headers=None):
    all_headers = {"Accept": "application/vnd.api+json"}
    if token is not None:
        all_headers["Authorization"] = token
    if isinstance(body, dict):
        body = json.dumps(body).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    return Response(response.status, response.headers, response.read())


def call(url, method, path, timeout=5.0, context=None, **kwargs):
    """One request on a new connection; a dict ``body`` is sent as JSON."""
    conn = _connection(url, timeout, context)
    try:
        return _send(conn, method, path, **kwargs)
    finally:
        conn.close()


def doc(attributes=None, key_id=None):
    """A JSON:API api_keys request document."""
    data = {"type": "api_keys"}
    if key_id is not None:
        data["id"] = key_id
    if attributes is not None:
        data["attributes"] = attributes
    return {"data": data}


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met within %.1f s" % timeout)


@pytest.fixture
def api(sandbox):
    """``api(method, path, token=..., body=..., headers=...)`` on a new connection."""
    def request(method, path, **kwargs):
        return call(sandbox.url, method, path, **kwargs)
    return request


@pytest.fixture
def admin(control):
    """The admin token of team ``platform``."""
    return control.admin_token("platform")


def team_keys(control, team="platform"):
    return next(entry for entry in control.state()["teams"] if entry["name"] == team)["keys"]


def key_named(control, name, team="platform"):
    return next(key for key in team_keys(control, team) if key["name"] == name)


def create(api, token, **attributes):
    response = api("POST", "/auth/api_keys", token=token, body=doc(attributes))
    assert response.status == 201, response.body
    return response.json["data"]


# -- envelopes, auth -------------------------------------------------------

def test_list_envelope_and_default_seed(api, admin):
    response = api("GET", "/auth/api_keys?page[size]=1&filter[name]=x", token=admin)
    assert response.status == 200
    assert response.headers["Content-Type"] == JSON_API
    body = response.json
    assert body["meta"] == {}
    assert [key["attributes"]["name"] for key in body["data"]] == ["admin", "ci-deployer", "monitoring"]
    for key in body["data"]:
        assert key["type"] == "api_keys"
        assert "token" not in key["attributes"]
        assert re.match(r"^tok_[A-Za-z0-9]{13}$", key["id"])
    assert [key["attributes"]["read_only"] for key in body["data"]] == [False, False, True]


def test_raw_and_bearer_authorization(api, admin):
    assert api("GET", "/auth/api_keys", token=admin).status == 200
    assert api("GET", "/auth/api_keys", token="Bearer " + admin).status == 200
    assert api("GET", "/auth/api_keys", token="bearer " + admin).status == 200


@pytest.mark.parametrize("token", [None, "", "0" * 36, "Bearer nope"])
def test_missing_or_unknown_token_is_401(api, token):
    response = api("GET", "/auth/api_keys", token=token)
    assert response.status == 401
    assert response.headers["Content-Type"] == JSON_API
    assert response.json == UNAUTHORIZED


def test_api_version_and_accept_are_ignored(api, admin):
    headers = {"API-Version": "2023-06-01", "Accept": "text/plain"}
    assert api("GET", "/auth/api_keys", token=admin, headers=headers).status == 200


def test_last_used_at_is_set_by_use(api, admin, control):
    key = create(api, admin, name="fresh")
    assert key["attributes"]["last_used_at"] is None
    api("GET", "/auth/api_keys", token=key["attributes"]["token"])
    assert TIMESTAMP.match(key_named(control, "fresh")["last_used_at"])


# -- create ------------------------------------------------------------------

def test_create_returns_201_with_token_once(api, admin, control):
    response = api("POST", "/auth/api_keys", token=admin,
                   body=doc({"name": "App Token", "allowed_ips": ["10.0.0.0/24", "192.168.1.100"]}))
    assert response.status == 201
    assert response.headers["Content-Type"] == JSON_API
    body = response.json
    assert body["meta"] == {}
    key, attributes = body["data"], body["data"]["attributes"]
    assert re.match(r"^tok_[A-Za-z0-9]{13}$", key["id"])
    assert re.match(r"^[0-9a-f]{36}$", attributes["token"])
    assert attributes["token_last_slice"] == attributes["token"][-5:]
    assert attributes["api_version"] == "2023-06-01"
    assert attributes["read_only"] is False
    assert attributes["allowed_ips"] == ["10.0.0.0/24", "192.168.1.100"]
    assert attributes["user"] == control.state()["teams"][0]["user"]
    assert TIMESTAMP.match(attributes["created_at"]) and TIMESTAMP.match(attributes["updated_at"])
    listed = api("GET", "/auth/api_keys", token=admin).json["data"]
    assert listed[-1]["id"] == key["id"] and "token" not in listed[-1]["attributes"]


def test_create_defaults_and_duplicate_names(api, admin):
    first = api("POST", "/auth/api_keys", token=admin, body=doc()).json["data"]
    second = api("POST", "/auth/api_keys", token=admin, body=doc({})).json["data"]
    assert first["attributes"]["name"] == second["attributes"]["name"] == "Name of the API Key"
    assert first["attributes"]["allowed_ips"] == [] and first["attributes"]["read_only"] is False
    assert first["id"] != second["id"]


def test_new_token_authenticates(api, admin):
    token = create(api, admin, name="ci")["attributes"]["token"]
    assert api("GET", "/auth/api_keys", token=token).status == 200


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "application/json; charset=utf-8", None])
def test_create_accepts_json_content_types(api, admin, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(doc({"name": "x"})).encode()
    assert api("POST", "/auth/api_keys", token=admin, body=body, headers=headers).status == 201


def test_create_rejects_form_content_type(api, admin):
    body = json.dumps(doc({"name": "x"})).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert api("POST", "/auth/api_keys", token=admin, body=body, headers=headers).status == 415


def test_chunked_request_body(sandbox, admin):
    conn = _connection(sandbox.url)
    body = json.dumps(doc({"name": "chunked"})).encode()
    conn.request("POST", "/auth/api_keys", body=iter([body[:10], body[10:]]), encode_chunked=True,
                 headers={"Authorization": admin, "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 201 and json.loads(response.read())["data"]["attributes"]["name"] == "chunked"
    conn.close()


# -- rotate (PUT) ------------------------------------------------------------------

def test_rotate_issues_new_token_and_revokes_old(api, admin):
    key = create(api, admin, name="ci", read_only=False)
    old = key["attributes"]["token"]
    response = api("PUT", "/auth/api_keys/" + key["id"], token=admin,
                   body=doc({"name": "renamed", "read_only": True, "allowed_ips": ["10.0.0.1"]}, key["id"]))
    assert response.status == 200 and response.headers["Content-Type"] == JSON_API
    attributes = response.json["data"]["attributes"]
    assert response.json["meta"] == {}
    assert attributes["token"] != old and re.match(r"^[0-9a-f]{36}$", attributes["token"])
    assert attributes["token_last_slice"] == attributes["token"][-5:]
    assert attributes["name"] == "renamed"
    assert attributes["read_only"] is False  # ignored on PUT
    assert attributes["allowed_ips"] is None  # empty shows as null on PUT
    assert api("GET", "/auth/api_keys", token=old).status == 401
    assert api("GET", "/auth/api_keys", token=attributes["token"]).status == 200


def test_rotate_without_attributes_keeps_name(api, admin):
    key = create(api, admin, name="keep")
    response = api("PUT", "/auth/api_keys/" + key["id"], token=admin, body=doc())
    assert response.json["data"]["attributes"]["name"] == "keep"


def test_rotating_own_admin_key_locks_out_the_holder(api, admin, control):
    admin_id = key_named(control, "admin")["id"]
    response = api("PUT", "/auth/api_keys/" + admin_id, token=admin, body=doc())
    new = response.json["data"]["attributes"]["token"]
    assert api("GET", "/auth/api_keys", token=admin).status == 401
    assert control.admin_token("platform") == new


# -- update (PATCH) ------------------------------------------------------------------

def test_patch_is_partial(api, admin):
    key = create(api, admin, name="ci", read_only=True, allowed_ips=["10.0.0.0/8"])
    response = api("PATCH", "/auth/api_keys/" + key["id"], token=admin, body=doc({"name": "ci2"}, key["id"]))
    assert response.status == 200 and response.headers["Content-Type"] == JSON_API
    attributes = response.json["data"]["attributes"]
    assert "token" not in attributes
    assert (attributes["name"], attributes["read_only"], attributes["allowed_ips"]) == ("ci2", True, ["10.0.0.0/8"])
    assert attributes["token_last_slice"] == key["attributes"]["token_last_slice"]


def test_patch_empty_allowed_ips_clears_and_shows_null(api, admin):
    key = create(api, admin, name="ci", allowed_ips=["10.0.0.0/8"])
    response = api("PATCH", "/auth/api_keys/" + key["id"], token=admin, body=doc({"allowed_ips": []}))
    assert response.json["data"]["attributes"]["allowed_ips"] is None
    listed = api("GET", "/auth/api_keys", token=admin).json["data"]
    assert next(item for item in listed if item["id"] == key["id"])["attributes"]["allowed_ips"] == []


def test_patch_read_only_and_token_still_valid(api, admin):
    key = create(api, admin, name="ci")
    response = api("PATCH", "/auth/api_keys/" + key["id"], token=admin, body=doc({"read_only": True}))
    assert response.json["data"]["attributes"]["read_only"] is True
    assert api("GET", "/auth/api_keys", token=key["attributes"]["token"]).status == 200


# -- delete -------------------------------------------------------------------------

def test_delete_then_404(api, admin):
    key = create(api, admin, name="gone")
    response = api("DELETE", "/auth/api_keys/" + key["id"], token=admin, headers={"Accept": "*/*"})
    assert response.status == 200
    assert response.headers["Content-Type"] == JSON_API
    assert response.json == {"meta": {}}
    again = api("DELETE", "/auth/api_keys/" + key["id"], token=admin)
    assert again.status == 404 and again.body == NOT_FOUND
    assert again.headers["Content-Type"] == JSON_API
    assert api("GET", "/auth/api_keys", token=key["attributes"]["token"]).status == 401


def test_deleting_the_calling_key_is_allowed(api, admin, control):
    admin_id = key_named(control, "admin")["id"]
    assert api("DELETE", "/auth/api_keys/" + admin_id, token=admin).status == 200
    assert api("GET", "/auth/api_keys", token=admin).status == 401
    assert control.admin_token("platform") is None


# -- scoping, routes ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_teams_key_is_404(api, admin, control, method):
    foreign = key_named(control, "ci-deployer", team="data")
    response = api(method, "/auth/api_keys/" + foreign["id"], token=admin, body=doc({"name": "x"}))
    assert response.status == 404 and response.body == NOT_FOUND
    assert key_named(control, "ci-deployer", team="data")["token"] == foreign["token"]


def test_list_is_scoped_to_the_team(api, admin, control):
    data_ids = {key["id"] for key in team_keys(control, "data")}
    listed = {key["id"] for key in api("GET", "/auth/api_keys", token=admin).json["data"]}
    assert listed and not listed & data_ids


@pytest.mark.parametrize("path", ["/auth/api_keys/tok_aaaaaaaaaaaaa", "/nope", "/auth/api_keys/a/b", "/"])
def test_unknown_routes_are_404(api, admin, path):
    response = api("GET", path, token=admin)
    assert response.status == 404 and response.body == NOT_FOUND


def test_single_key_get_does_not_exist(api, admin, control):
    response = api("GET", "/auth/api_keys/" + key_named(control, "admin")["id"], token=admin)
    assert response.status == 404 and response.body == NOT_FOUND


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/auth/api_keys", "GET, POST"),
    ("POST", "/auth/api_keys/tok_aaaaaaaaaaaaa", "PUT, PATCH, DELETE"),
])
def test_wrong_method_is_405(api, admin, method, path, allow):
    response = api(method, path, token=admin)
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert response.json["errors"][0]["status"] == "405"


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO"])
@pytest.mark.parametrize("path, allow", [
    ("/auth/api_keys", "GET, POST"),
    ("/auth/api_keys/tok_aaaaaaaaaaaaa", "PUT, PATCH, DELETE"),
])
def test_other_methods_are_405_with_allow_and_a_json_api_error(api, admin, method, path, allow):
    response = api(method, path, token=admin)
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert response.headers["Content-Type"] == JSON_API
    error, = response.json["errors"]
    assert error["status"] == "405" and error["code"] == "method_not_allowed"
    assert method in error["detail"]


def test_head_is_405_with_allow_and_no_body_and_keeps_the_connection(sandbox, admin):
    conn = _connection(sandbox.url)
    try:
        head = _send(conn, "HEAD", "/auth/api_keys", token=admin)
        assert head.status == 405
        assert head.headers["Allow"] == "GET, POST"
        assert head.headers["Content-Type"] == JSON_API
        assert head.body == b""
        # Nothing of a body was sent: the next answer on the same connection is read intact.
        listed = _send(conn, "GET", "/auth/api_keys", token=admin)
        assert listed.status == 200 and isinstance(listed.json["data"], list)
    finally:
        conn.close()


def test_other_methods_on_an_unknown_path_are_404(api, admin):
    response = api("OPTIONS", "/nowhere", token=admin)
    assert response.status == 404 and response.body == NOT_FOUND


# -- read-only and IP allowlists -----------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("POST", "/auth/api_keys"), ("PUT", "/auth/api_keys/{id}"),
    ("PATCH", "/auth/api_keys/{id}"), ("DELETE", "/auth/api_keys/{id}"),
])
def test_read_only_key_cannot_write(api, control, method, path):
    monitoring = key_named(control, "monitoring")
    response = api(method, path.format(id=monitoring["id"]), token=monitoring["token"], body=doc({"name": "x"}))
    assert response.status == 403 and response.json == READ_ONLY
    assert api("GET", "/auth/api_keys", token=monitoring["token"]).status == 200


@pytest.mark.parametrize("allowed, status", [
    (["10.0.0.0/8"], 403), (["127.0.0.1"], 200), (["127.0.0.0/8", "::1"], 200), (["::1"], 403),
])
def test_allowed_ips_are_enforced(api, admin, allowed, status):
    token = create(api, admin, name="ip", allowed_ips=allowed)["attributes"]["token"]
    response = api("GET", "/auth/api_keys", token=token)
    assert response.status == status
    if status == 403:
        error = response.json["errors"][0]
        assert error["code"] == "FORBIDDEN" and "127.0.0.1" in error["detail"] and "not allowed" in error["detail"]


# -- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("body, pointer", [
    (b"{not json", None),
    (b"", None),
    (b"[]", "/data"),
    (b'{"name": "x"}', "/data"),
    (b'{"data": {"attributes": {"name": "x"}}}', "/data/type"),
    (b'{"data": {"type": "ssh_keys", "attributes": {"name": "x"}}}', "/data/type"),
    (b'{"data": {"type": "api_keys", "attributes": "x"}}', "/data/attributes"),
])
def test_malformed_documents_are_400(api, admin, body, pointer):
    response = api("POST", "/auth/api_keys", token=admin, body=body, headers={"Content-Type": "application/json"})
    assert response.status == 400 and response.headers["Content-Type"] == JSON_API
    error = response.json["errors"][0]
    assert error["status"] == "400" and error["detail"]
    assert error.get("source", {}).get("pointer") == pointer


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_body_id_must_match_path(api, admin, control, method):
    key_id = key_named(control, "ci-deployer")["id"]
    response = api(method, "/auth/api_keys/" + key_id, token=admin, body=doc({"name": "x"}, "tok_other"))
    assert response.status == 400
    assert response.json["errors"][0]["source"] == {"pointer": "/data/id"}
    assert api(method, "/auth/api_keys/" + key_id, token=admin, body=doc({"name": "x"}, key_id)).status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_is_422(api, admin, control, method, name):
    path = "/auth/api_keys" if method == "POST" else "/auth/api_keys/" + key_named(control, "ci-deployer")["id"]
    response = api(method, path, token=admin, body=doc({"name": name}))
    assert response.status == 422 and response.headers["Content-Type"] == JSON_API
    assert response.json == BLANK_NAME


@pytest.mark.parametrize("attributes, pointer, fragment", [
    ({"name": 5}, "/data/attributes/name", "Name must be a string"),
    ({"read_only": "yes"}, "/data/attributes/read_only", "Read only"),
    ({"read_only": None}, "/data/attributes/read_only", "Read only"),
    ({"allowed_ips": "10.0.0.1"}, "/data/attributes/allowed_ips", "array of strings"),
    ({"allowed_ips": [10]}, "/data/attributes/allowed_ips", "array of strings"),
    ({"allowed_ips": ["10.0.0.1", "300.1.1.1"]}, "/data/attributes/allowed_ips", "300.1.1.1"),
    ({"allowed_ips": ["10.0.0.0/33"]}, "/data/attributes/allowed_ips", "10.0.0.0/33"),
])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_invalid_attributes_are_422(api, admin, control, method, attributes, pointer, fragment):
    path = "/auth/api_keys" if method == "POST" else "/auth/api_keys/" + key_named(control, "ci-deployer")["id"]
    response = api(method, path, token=admin, body=doc(attributes))
    assert response.status == 422
    error = response.json["errors"][0]
    assert (error["code"], error["status"], error["source"]["pointer"]) == ("unprocessable_entity", "422", pointer)
    assert fragment in error["detail"]
    assert error["meta"]["attribute"] == pointer.rsplit("/", 1)[1]


def test_allowed_ips_are_stored_as_sent(api, admin):
    sent = ["10.0.0.1/24", "192.168.1.100", "2001:db8::/32", "10.0.0.1/24"]
    assert create(api, admin, name="ips", allowed_ips=sent)["attributes"]["allowed_ips"] == sent


# -- faults -------------------------------------------------------------------------

def names(control):
    return [key["name"] for key in team_keys(control)]


def test_status_fault_is_not_applied(api, admin, control):
    control.fault(method="POST", path="/auth/api_keys", kind="status", status=503, retry_after=7,
                  retry_after_header=3)
    response = api("POST", "/auth/api_keys", token=admin, body=doc({"name": "nope"}))
    assert response.status == 503 and response.headers["Retry-After"] == "3"
    error = response.json["errors"][0]
    assert error["status"] == "503" and error["meta"] == {"retry_after": 7}
    assert "nope" not in names(control)
    assert api("POST", "/auth/api_keys", token=admin, body=doc({"name": "yes"})).status == 201


def test_status_fault_canned_bodies(api, admin, control):
    control.fault(kind="status", status=429)
    control.fault(kind="status", status=401)
    limited = api("GET", "/auth/api_keys", token=admin)
    assert limited.status == 429 and "Retry-After" not in limited.headers
    assert limited.json["errors"][0]["code"] == "RATE_LIMIT_EXCEEDED" and limited.json["errors"][0]["meta"] == {}
    assert api("GET", "/auth/api_keys", token=admin).json == UNAUTHORIZED


def test_status_fault_custom_body(api, admin, control):
    control.fault(kind="status", status=500, body="oops", content_type="text/plain")
    response = api("GET", "/auth/api_keys", token=admin)
    assert (response.status, response.body, response.headers["Content-Type"]) == (500, b"oops", "text/plain")


def test_fault_matching_times_and_order(api, admin, control):
    key_id = key_named(control, "ci-deployer")["id"]
    control.fault(method="GET", path="/auth/api_keys", kind="status", status=500)
    control.fault(method="*", path="/auth/api_keys/*", kind="status", status=502, times=2)
    control.fault(method="*", path="*", kind="status", status=504)
    assert api("PATCH", "/auth/api_keys/" + key_id, token=admin, body=doc()).status == 502
    assert api("GET", "/auth/api_keys", token=admin).status == 500
    assert api("DELETE", "/auth/api_keys/" + key_id, token=admin).status == 502
    assert api("GET", "/auth/api_keys", token=admin).status == 504
    assert api("GET", "/auth/api_keys", token=admin).status == 200
    assert [rule["remaining"] for rule in control.faults()] == [0, 0, 0]
    control.clear_faults()
    assert control.faults() == []


def test_drop_after_apply_applies(api, admin, control):
    control.fault(method="POST", path="/auth/api_keys", kind="drop_after_apply")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api("POST", "/auth/api_keys", token=admin, body=doc({"name": "ghost"}))
    assert "ghost" in names(control)


def test_drop_before_apply_does_not_apply(api, admin, control):
    control.fault(method="POST", path="/auth/api_keys", kind="drop_before_apply")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api("POST", "/auth/api_keys", token=admin, body=doc({"name": "ghost"}))
    assert "ghost" not in names(control)


@pytest.mark.parametrize("apply", [True, False])
def test_delay_fault_times_out_the_client(api, admin, control, apply):
    control.fault(method="POST", path="/auth/api_keys", kind="delay", seconds=0.6, apply=apply)
    with pytest.raises(socket.timeout):
        api("POST", "/auth/api_keys", token=admin, body=doc({"name": "slow"}), timeout=0.2)
    wait_for(lambda: any(entry["fault"] == "delay" for entry in control.log()))
    assert ("slow" in names(control)) is apply


def test_delay_fault_then_normal_answer(api, admin, control):
    control.fault(method="GET", path="/auth/api_keys", kind="delay", seconds=0.1)
    started = time.monotonic()
    assert api("GET", "/auth/api_keys", token=admin).status == 200
    assert time.monotonic() - started >= 0.1


def test_malformed_json_fault(api, admin, control):
    control.fault(method="GET", kind="malformed_json")
    control.fault(method="POST", kind="malformed_json")
    response = api("GET", "/auth/api_keys", token=admin)
    assert (response.status, response.body, response.headers["Content-Type"]) == (200, b'{"data": [', JSON_API)
    written = api("POST", "/auth/api_keys", token=admin, body=doc({"name": "ambiguous"}))
    assert written.status == 201 and written.body == b'{"data": ['
    assert "ambiguous" in names(control)


def test_html_502_fault(api, admin, control):
    control.fault(method="POST", kind="html_502")
    response = api("POST", "/auth/api_keys", token=admin, body=doc({"name": "nope"}))
    assert response.status == 502 and response.headers["Content-Type"] == "text/html"
    assert b"502 Bad Gateway" in response.body and b"nginx" in response.body
    assert "nope" not in names(control)


def test_empty_body_fault(api, admin, control):
    control.fault(method="GET", kind="empty_body")
    control.fault(method="POST", kind="empty_body", status=200)
    response = api("GET", "/auth/api_keys", token=admin)
    assert (response.status, response.body, response.headers["Content-Length"]) == (200, b"", "0")
    assert "Content-Type" not in response.headers
    written = api("POST", "/auth/api_keys", token=admin, body=doc({"name": "ambiguous"}))
    assert (written.status, written.body) == (200, b"")
    assert "ambiguous" in names(control)


def test_gateway_504_apply_later_fault(api, admin, control):
    control.fault(method="POST", kind="gateway_504_apply_later", seconds=0.5)
    response = api("POST", "/auth/api_keys", token=admin, body=doc({"name": "late"}))
    assert response.status == 504 and response.headers["Content-Type"] == "text/html"
    assert b"504 Gateway Time-out" in response.body
    assert "late" not in names(control)
    assert wait_for(lambda: "late" in names(control))


@pytest.mark.parametrize("rule", [
    {"kind": "explode"}, {"kind": "status"}, {"kind": "status", "status": "500"},
    {"kind": "delay"}, {"kind": "html_502", "times": 0}, {"kind": "gateway_504_apply_later"},
])
def test_invalid_fault_rules_are_rejected(control, rule):
    with pytest.raises(ControlError) as info:
        control.fault(**rule)
    assert info.value.status == 400


def test_faulted_requests_are_logged(api, admin, control):
    control.fault(kind="drop_before_apply")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api("GET", "/auth/api_keys", token=admin)
    entry = wait_for(control.log)[-1]
    assert (entry["fault"], entry["status"], entry["team"]) == ("drop_before_apply", None, "platform")


# -- rate limit -------------------------------------------------------------------------

def patch_name(api, token, key_id, name):
    return api("PATCH", "/auth/api_keys/" + key_id, token=token, body=doc({"name": name}))


def test_rate_limit_21st_write_is_429_until_the_window_resets(api, admin, control):
    assert control.rate_limit(True, 3.0) == {"enabled": True, "window": 3.0, "retry_after_header": False}
    key = key_named(control, "ci-deployer")
    key_id = key["id"]
    for index in range(20):
        assert patch_name(api, admin, key_id, "n%d" % index).status == 200
    limited = patch_name(api, admin, key_id, "over")
    assert limited.status == 429 and "Retry-After" not in limited.headers
    error = limited.json["errors"][0]
    assert (error["code"], error["status"], error["title"]) == ("RATE_LIMIT_EXCEEDED", "429", "Rate Limit Exceeded")
    retry_after = error["meta"]["retry_after"]
    assert isinstance(retry_after, float) and 0 < retry_after <= 3.0
    assert key_named(control, "n19")["id"] == key_id
    assert api("GET", "/auth/api_keys", token=admin).status == 200  # reads have their own budget
    assert patch_name(api, key["token"], key_id, "other-key").status == 200  # limits are per key
    time.sleep(retry_after + 0.05)
    assert patch_name(api, admin, key_id, "again").status == 200


def test_rate_limit_reads_and_header(api, admin, control):
    control.rate_limit(True, 30.0, retry_after_header=True)
    for dummy in range(60):
        assert api("GET", "/auth/api_keys", token=admin).status == 200
    limited = api("GET", "/auth/api_keys", token=admin)
    assert limited.status == 429
    retry_after = limited.json["errors"][0]["meta"]["retry_after"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 30
    assert limited.headers["Retry-After"] == str(retry_after)
    control.rate_limit(False)
    assert api("GET", "/auth/api_keys", token=admin).status == 200


def test_rate_limit_from_the_constructor():
    with Sandbox(rate_limit=True, rate_window=60.0, retry_after_header=True) as sandbox:
        token = sandbox.control.admin_token("platform")
        statuses = [call(sandbox.url, "POST", "/auth/api_keys", token=token, body=doc()).status for dummy in range(21)]
        assert statuses == [201] * 20 + [429]
        assert len(team_keys(sandbox.control)) == 3 + 20


# -- control API, seed, log, journal ----------------------------------------------------------

def test_state_and_tokens(control):
    state = control.state()
    assert [team["name"] for team in state["teams"]] == ["platform", "data"]
    for team in state["teams"]:
        assert re.match(r"^[0-9a-f]{36}$", team["admin_token"])
        assert team["keys"][0]["name"] == "admin" and team["keys"][0]["token"] == team["admin_token"]
        assert team["user"]["id"].startswith("user_") and "@" in team["user"]["email"]
    seeded = [key["token"] for team in state["teams"] for key in team["keys"]]
    assert control.tokens() == seeded
    assert control.health() == {"ok": True}


def test_add_team(api, control):
    team = control.add_team("t3", keys=[{"name": "k1"}, {"name": "k2", "read_only": True}], admin_token="t3-admin")
    assert team["admin_token"] == "t3-admin" and [key["name"] for key in team["keys"]] == ["admin", "k1", "k2"]
    listed = api("GET", "/auth/api_keys", token="t3-admin").json["data"]
    assert [key["attributes"]["name"] for key in listed] == ["admin", "k1", "k2"]
    with pytest.raises(ControlError) as duplicate:
        control.add_team("t3")
    assert duplicate.value.status == 409
    with pytest.raises(ControlError) as reused:
        control.add_team("t4", admin_token="t3-admin")
    assert reused.value.status == 409
    with pytest.raises(ControlError) as invalid:
        control.add_team("t5", keys=[{"allowed_ips": ["nope"]}])
    assert invalid.value.status == 400


def test_reset_restores_the_seed(api, admin, control):
    seeded = {team["name"]: team["admin_token"] for team in control.state()["teams"]}
    create(api, admin, name="temp")
    control.add_team("t3")
    control.fault(kind="status", status=500)
    control.rate_limit(True, 1.0)
    control.latency(5)
    state = control.reset()
    assert {team["name"]: team["admin_token"] for team in state["teams"]} == seeded
    assert names(control) == ["admin", "ci-deployer", "monitoring"]
    assert control.log() == [] and control.faults() == []
    assert api("GET", "/auth/api_keys", token=admin).status == 200


def test_seed_file(tmp_path):
    seed = {"teams": [{
        "name": "platform", "admin_token": "not-hex-at-all",
        "user": {"id": "user_abc", "email": "ops@example.test"},
        "keys": [{"name": "ci", "read_only": False, "allowed_ips": ["10.0.0.0/8"]}, {"name": "ro", "read_only": True}],
    }]}
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    with Sandbox(seed=str(path)) as sandbox:
        listed = call(sandbox.url, "GET", "/auth/api_keys", token="not-hex-at-all").json["data"]
        assert [key["attributes"]["name"] for key in listed] == ["admin", "ci", "ro"]
        assert listed[1]["attributes"]["allowed_ips"] == ["10.0.0.0/8"]
        assert {key["attributes"]["user"]["email"] for key in listed} == {"ops@example.test"}
        sandbox.control.reset()
        assert sandbox.control.admin_token("platform") == "not-hex-at-all"


@pytest.mark.parametrize("seed", [
    {}, {"teams": [{"name": ""}]}, {"teams": [{"name": "a"}, {"name": "a"}]},
    {"teams": [{"name": "a", "keys": [{"name": " "}]}]},
    {"teams": [{"name": "a", "admin_token": "x"}, {"name": "b", "admin_token": "x"}]},
])
def test_invalid_seeds_are_rejected(seed):
    with pytest.raises(ValueError):
        Sandbox(seed=seed)


def test_control_errors(sandbox, control):
    assert call(sandbox.url, "GET", "/_sandbox/nope").status == 404
    assert call(sandbox.url, "PUT", "/_sandbox/state").status == 405
    assert call(sandbox.url, "POST", "/_sandbox/latency", body=b"[1]").status == 400
    with pytest.raises(ControlError):
        control.latency(-1)
    with pytest.raises(ControlError):
        control.rate_limit(True, 0)


def test_latency(api, admin, control):
    control.latency(80)
    started = time.monotonic()
    assert api("GET", "/auth/api_keys", token=admin).status == 200
    assert time.monotonic() - started >= 0.08
    assert control.log()[-1]["duration_ms"] >= 80


def test_request_log(api, admin, control):
    key = create(api, admin, name="logged")
    api("PATCH", "/auth/api_keys/" + key["id"], token=admin, body=doc({"name": "x"}))
    api("GET", "/auth/api_keys", token="bad")
    control.state()  # control requests are not logged
    entries = control.log()
    assert [(entry["method"], entry["status"]) for entry in entries] == [("POST", 201), ("PATCH", 200), ("GET", 401)]
    assert [entry["seq"] for entry in entries] == [1, 2, 3]
    assert [entry["key_id"] for entry in entries] == [key["id"], key["id"], None]
    assert [entry["team"] for entry in entries] == ["platform", "platform", None]
    assert entries[0]["path"] == "/auth/api_keys" and entries[0]["fault"] is None
    assert control.log(since=2) == entries[2:]
    control.clear_log()
    assert control.log() == []
    api("GET", "/auth/api_keys", token=admin)
    assert control.log()[0]["seq"] == 4


def test_log_file_and_token_journal_hold_no_secrets_where_they_must_not(tmp_path):
    log_path, journal = tmp_path / "requests.jsonl", tmp_path / "tokens.txt"
    with Sandbox(log_path=str(log_path), token_journal=str(journal)) as sandbox:
        admin = sandbox.control.admin_token("platform")
        key = call(sandbox.url, "POST", "/auth/api_keys", token=admin, body=doc({"name": "j"})).json["data"]
        call(sandbox.url, "PUT", "/auth/api_keys/" + key["id"], token="Bearer " + admin, body=doc())
        call(sandbox.url, "GET", "/auth/api_keys?token=" + admin, token=admin)
        tokens = sandbox.control.tokens()
    assert journal.read_text().splitlines() == tokens
    assert key["attributes"]["token"] in tokens and len(tokens) == 6 + 2
    text = log_path.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert [entry["method"] for entry in entries] == ["POST", "PUT", "GET"]
    assert set(entries[0]) == {"seq", "ts", "method", "path", "status", "team", "key_id", "fault", "duration_ms"}
    assert not any(token in text for token in tokens)
    assert "Authorization" not in text and "Bearer" not in text


# -- transport: keep-alive, stop, TLS, CLI ------------------------------------------------------

def test_keep_alive_has_no_nagle_stall(sandbox, admin):
    conn = _connection(sandbox.url)
    try:
        started = time.monotonic()
        first = _send(conn, "POST", "/auth/api_keys", token=admin, body=doc({"name": "ka"}))
        sock = conn.sock
        second = _send(conn, "GET", "/auth/api_keys", token=admin)
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    assert (first.status, second.status) == (201, 200)
    assert sock is not None and sock is conn.sock or conn.sock is None
    assert elapsed < 0.2, "two keep-alive requests took %.3f s" % elapsed


def test_concurrent_creates_are_all_kept(sandbox, admin, control):
    def worker(index):
        for number in range(25):
            call(sandbox.url, "POST", "/auth/api_keys", token=admin, body=doc({"name": "w%d-%d" % (index, number)}))
    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = team_keys(control)
    assert len(keys) == 3 + 200
    assert len({key["id"] for key in keys}) == len({key["token"] for key in keys}) == 203
    assert [entry["seq"] for entry in control.log()] == list(range(1, 201))


def test_stop_closes_keep_alive_connections():
    sandbox = Sandbox().start()
    token = sandbox.control.admin_token("platform")
    conn = _connection(sandbox.url)
    try:
        assert _send(conn, "GET", "/auth/api_keys", token=token).status == 200
        sandbox.stop()
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            _send(conn, "GET", "/auth/api_keys", token=token)
    finally:
        conn.close()


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        # No silent skip: only an explicit LATITUDESH_ALLOW_MISSING=openssl turns this failure into a skip.
        if "openssl" not in os.environ.get("LATITUDESH_ALLOW_MISSING", "").split(","):
            pytest.fail("openssl is not installed: cannot make a self-signed certificate for the TLS test "
                        "(install openssl, or set LATITUDESH_ALLOW_MISSING=openssl to skip it)")
        pytest.skip("openssl is not installed (allowed by LATITUDESH_ALLOW_MISSING)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def test_tls(certificate):
    with Sandbox(tls=certificate) as sandbox:
        assert sandbox.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=certificate[0])
        token = sandbox.control.admin_token("platform")
        response = call(sandbox.url, "GET", "/auth/api_keys", token=token, context=context)
        assert response.status == 200 and len(response.json["data"]) == 3
        with pytest.raises(ssl.SSLError):
            call(sandbox.url, "GET", "/auth/api_keys", token=token, context=ssl.create_default_context())
        assert call(sandbox.url, "GET", "/auth/api_keys", token=token, context=context).status == 200


def test_cli_starts_serves_and_stops_on_sigterm(tmp_path):
    url_file, pid_file = tmp_path / "url", tmp_path / "pid"
    journal, log_path = tmp_path / "tokens", tmp_path / "log.jsonl"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"teams": [{"name": "cli", "admin_token": "a" * 36, "keys": [{"name": "k"}]}]}))
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--port", "0", "--url-file", str(url_file), "--pid-file", str(pid_file),
         "--seed", str(seed), "--token-journal", str(journal), "--log", str(log_path), "--latency-ms", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = wait_for(lambda: url_file.exists() and url_file.read_text(), timeout=10).rstrip("\n")
        assert url_file.read_text() == url + "\n"
        assert re.match(r"^http://127\.0\.0\.1:\d+$", url)
        assert int(pid_file.read_text()) == process.pid
        assert call(url, "GET", "/auth/api_keys", token="a" * 36).status == 200
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stdout == "latitude-sandbox listening on %s\n" % url
    tokens = journal.read_text().splitlines()
    assert tokens[0] == "a" * 36 and len(tokens) == 2
    assert not any(token in stdout + stderr + log_path.read_text() for token in tokens)


def test_cli_rejects_a_bad_seed(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text("{\"teams\": 3}")
    result = subprocess.run([sys.executable, SCRIPT, "--seed", str(seed)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2 and "teams" in result.stderr


def test_sandbox_process_serves_until_stopped(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"teams": [{"name": "child", "admin_token": "b" * 36, "keys": [{"name": "k"}]}]}))
    output = tmp_path / "out.txt"
    with latitude_sandbox.SandboxProcess(["--seed", str(seed)], work_dir=str(tmp_path), output=str(output)) as child:
        assert child.proc.pid != os.getpid() and child.proc.poll() is None
        assert re.match(r"^http://127\.0\.0\.1:\d+$", child.url)
        assert [team["name"] for team in child.control.state()["teams"]] == ["child"]
        assert call(child.url, "GET", "/auth/api_keys", token="b" * 36).status == 200
        process = child.proc
    assert process.poll() is not None
    assert output.read_text() == "latitude-sandbox listening on %s\n" % child.url
    with pytest.raises(OSError):
        call(child.url, "GET", "/auth/api_keys", token="b" * 36)


def test_sandbox_process_without_work_dir_cleans_up():
    child = latitude_sandbox.SandboxProcess().start()
    work_dir = child.proc.args[child.proc.args.index("--url-file") + 1].rsplit(os.sep, 1)[0]
    try:
        assert os.path.isdir(work_dir)
        assert sorted(team["name"] for team in child.control.state()["teams"]) == ["data", "platform"]
    finally:
        child.stop()
    assert child.proc.poll() is not None and not os.path.exists(work_dir)


def test_sandbox_process_reports_a_failed_start(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text("{\"teams\": 3}")
    output = tmp_path / "out.txt"
    child = latitude_sandbox.SandboxProcess(["--seed", str(seed)], work_dir=str(tmp_path), output=str(output))
    with pytest.raises(RuntimeError, match="did not start; see %s" % re.escape(str(output))):
        child.start()
    assert child.proc.poll() == 2 and "teams" in output.read_text()


def test_cli_exits_when_idle(tmp_path):
    url_file = tmp_path / "url"
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--port", "0", "--url-file", str(url_file), "--exit-when-idle", "1.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = wait_for(lambda: url_file.exists() and url_file.read_text(), timeout=10).rstrip("\n")
        # Requests keep it alive well past the idle limit ...
        for dummy in range(6):
            assert call(url, "GET", "/_sandbox/health").status == 200
            time.sleep(0.5)
        assert process.poll() is None
        # ... and without them it stops by itself, cleanly.
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0 and stderr == ""
    assert re.search(r"no request for \d+ s, stopping\n$", stdout)


def test_cli_rejects_a_non_positive_idle_limit():
    result = subprocess.run([sys.executable, SCRIPT, "--exit-when-idle", "0"], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2 and "--exit-when-idle must be positive" in result.stderr


def test_retry_after_rounding():
    limiter = latitude_sandbox.RateLimiter(True, 2.0, retry_after_header=True)
    error = limiter._exceeded(1.23456)  # pylint: disable=protected-access
    assert error.error["meta"]["retry_after"] == 1.235 and error.headers == [("Retry-After", "2")]
    assert latitude_sandbox.RateLimiter(True, 60.0)._exceeded(0.2).error["meta"]["retry_after"] == math.ceil(0.2)  # pylint: disable=protected-access
