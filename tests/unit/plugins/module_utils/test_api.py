# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for LatitudeClient: headers, retries, waits and error messages.

``LatitudeClient._exchange`` (one attempt) is replaced by a script of ``Answer`` objects and
phase-tagged ``TransportFailure`` exceptions, as the transport gives them; waits are recorded, never slept.
"""

import email.utils
import json
import socket
import ssl
import time

import pytest

from ansible_collections.latitudesh.cloud.plugins.module_utils import _api_retry
from ansible_collections.latitudesh.cloud.plugins.module_utils._api import (
    Answer,
    ConfigError,
    LatitudeClient,
    LatitudeError,
    TransportFailure,
    tls_context,
    validate_api_url,
    validate_connection,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_answers import error_detail
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_retry import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_ADVISED_WAIT,
    advised_wait,
    backoff,
)
from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import (  # noqa: F401
    certificate_rejected,
    connect_refused,
    connect_timeout,
    http_response,
    read_timeout,
    remote_disconnected,
)

TOKEN = "Tk9secret5b1f0c2a7e3d9c4b8a6f1e0d4d063"
BASE = "https://api.example.test"
PATH = "/auth/api_keys"
ITEM = "/auth/api_keys/tok_x1ZJrdx5qg4LV"
ENV_VARS = ("LATITUDESH_AUTH_TOKEN", "LATITUDESH_BEARER", "LATITUDESH_TOKEN")
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
IDEMPOTENT = ("GET", "PATCH", "DELETE")
NOT_IDEMPOTENT = ("POST", "PUT")
SERVER_ERROR_CODES = (500, 502, 503, 504)
BODY = {"data": {"type": "api_keys", "attributes": {"name": "ci"}}}
OK_DOC = {"data": {"id": "tok_x1ZJrdx5qg4LV", "type": "api_keys", "attributes": {"name": "ci"}}, "meta": {}}
NOT_FOUND = {"errors": [{"code": "not_found", "status": "404", "title": "Error",
                         "detail": "Specified Record Not Found", "meta": {}}]}


# --------------------------------------------------------------------------- helpers


def response(status, body=None, headers=None, text=None, content_type="application/vnd.api+json; charset=utf-8"):
    """An Answer with the given status, headers and body."""
    resp = http_response(status, body, text=text, headers=headers, content_type=content_type)
    resp.url = BASE + PATH
    return resp


def ok(method):
    """A plausible success answer for ``method``."""
    if method == "POST":
        return response(201, OK_DOC)
    if method == "DELETE":
        return response(200, {"meta": {}})
    return response(200, OK_DOC)


def rate_limited(retry_after=None, meta=None):
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    err = {"code": "RATE_LIMIT_EXCEEDED", "title": "Rate Limit Exceeded", "status": "429",
           "detail": "Too many requests. Please slow down and retry.", "meta": {}}
    if meta is not None:
        err["meta"]["retry_after"] = meta
    return response(429, {"errors": [err]}, headers=headers)


class Script(object):
    """Stands in for ``LatitudeClient._exchange``: answers from a list, records every call.

    A call is ``dict(session=the client (its ``headers``), method, url, kwargs=dict(json=body, timeout=the
    attempt's deadline))``.
    """

    def __init__(self):
        self.outcomes = []
        self.calls = []

    def __call__(self, client, method, path, body, deadline):
        url = client.base_url + path
        kwargs = dict(json=body, timeout=deadline.seconds)
        self.calls.append(dict(session=client, method=method, url=url, kwargs=kwargs))
        if not self.outcomes:
            raise AssertionError("unexpected request %s %s (no answer scripted)" % (method, url))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @property
    def methods(self):
        return [call["method"] for call in self.calls]


@pytest.fixture
def script(monkeypatch):
    fake = Script()

    def exchange(client, method, path, body, deadline):
        return fake(client, method, path, body, deadline)

    monkeypatch.setattr(LatitudeClient, "_exchange", exchange)
    return fake


def params(**overrides):
    base = dict(auth_token=TOKEN, api_url=BASE, api_timeout=7, api_retries=3, validate_certs=True)
    base.update(overrides)
    return base


def make_client(**overrides):
    waits = []
    return LatitudeClient(params(**overrides), sleep=waits.append), waits


def call(client, method, path=PATH, body=None):
    if method in ("POST", "PUT", "PATCH"):
        return client.request(method, path, body if body is not None else BODY)
    return client.request(method, path)


def failure(client, method, path=PATH, body=None):
    with pytest.raises(LatitudeError) as info:
        call(client, method, path, body)
    return info.value


def token_windows(size=8):
    return [TOKEN[i:i + size] for i in range(len(TOKEN) - size + 1)]


# --------------------------------------------------------------------------- headers


def test_headers_raw_token_accept_and_user_agent(script):
    script.outcomes = [response(200, {"data": [], "meta": {}})]
    client = make_client()[0]
    assert client.get(PATH) == {"data": [], "meta": {}}
    sent = script.calls[0]
    headers = sent["session"].headers
    assert headers["Authorization"] == TOKEN
    assert not headers["Authorization"].lower().startswith("bearer")
    assert headers["Accept"] == "application/vnd.api+json"
    assert headers["User-Agent"] == "ansible-latitudesh.cloud/0.1.0"
    assert sent["method"] == "GET"
    assert sent["url"] == BASE + PATH
    assert sent["kwargs"]["timeout"] == 7
    assert sent["kwargs"].get("json") is None
    assert "data" not in sent["kwargs"]


def test_token_is_stripped_before_use(script):
    script.outcomes = [response(200, {"data": []})]
    client = make_client(auth_token="  %s\n" % TOKEN)[0]
    client.get(PATH)
    assert script.calls[0]["session"].headers["Authorization"] == TOKEN


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_is_sent_as_json(script, method):
    script.outcomes = [ok(method)]
    client = make_client()[0]
    assert call(client, method, ITEM, BODY) == OK_DOC
    kwargs = script.calls[0]["kwargs"]
    assert kwargs["json"] == BODY
    assert "data" not in kwargs
    assert script.calls[0]["url"] == BASE + ITEM


@pytest.mark.parametrize("method", IDEMPOTENT)
def test_timeout_is_passed_on_every_attempt(script, method):
    script.outcomes = [response(503, text="busy"), connect_refused(), rate_limited(meta=1), ok(method)]
    client, waits = make_client(api_timeout=13)
    call(client, method)
    assert len(script.calls) == 4
    assert [c["kwargs"]["timeout"] for c in script.calls] == [13, 13, 13, 13]


@pytest.mark.parametrize("validate_certs", [True, False])
def test_tls_context_follows_validate_certs(monkeypatch, validate_certs):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    context = tls_context(validate_certs)
    assert (context.verify_mode == ssl.CERT_REQUIRED) is validate_certs
    assert context.check_hostname is validate_certs
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("env_var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_validate_certs_false_wins_over_ca_bundle_environment(monkeypatch, tmp_path, env_var):
    # requests let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session-level verify=False;
    # validate_certs=false must still turn verification off.
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv(env_var, str(bundle))
    context = tls_context(False)
    assert context.verify_mode == ssl.CERT_NONE and context.check_hostname is False


@pytest.mark.parametrize("env_var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_variable_naming_no_file_is_refused_before_any_request(monkeypatch, tmp_path, env_var):
    # requests raised a bare OSError ("Could not find a suitable TLS CA certificate bundle") that named no variable.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env_var, str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError) as info:
        make_client(validate_certs=True)
    message = info.value.message
    assert env_var in message and "missing.pem" in message and "does not exist" in message, message
    make_client(validate_certs=False)  # not used then: accepted
    make_client(api_url="http://127.0.0.1:8080")  # nor for plain http


@pytest.mark.parametrize("env_var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_variable_is_the_only_trust_with_validate_certs(monkeypatch, tmp_path, env_var):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env_var, str(tmp_path / "missing.pem"))
    with pytest.raises(OSError):  # the named file is loaded, not certifi's or the system's
        tls_context(True)


def test_wire_request_headers_and_body():
    """What goes on the wire, read by a listener of the test's own: headers, JSON body, no Bearer."""
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def serve():
        conn, _addr = server.accept()
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < len(json.dumps(BODY)):
            data += conn.recv(65536)
        received.append(data)
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 2\r\n\r\n{}")
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/base" % server.getsockname()[1]
        make_client(api_url=url, api_timeout=9)[0].post(PATH, BODY)
    finally:
        thread.join(5)
        server.close()
    head, body = received[0].split(b"\r\n\r\n", 1)
    lines = head.decode("ascii").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert lines[0] == "POST /base%s HTTP/1.1" % PATH
    assert headers["Authorization"] == TOKEN
    assert headers["Accept"] == "application/vnd.api+json"
    assert headers["User-Agent"] == "ansible-latitudesh.cloud/0.1.0"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == url.split("/")[2]
    assert json.loads(body) == BODY


# --------------------------------------------------------------------------- 429


@pytest.mark.parametrize("method", ALL_METHODS)
def test_429_is_retried_for_every_method(script, method):
    script.outcomes = [rate_limited(retry_after=3), ok(method)]
    client, waits = make_client()
    result = call(client, method, ITEM)
    assert result == ok(method).json()
    assert script.methods == [method, method]
    assert waits == [3.0]


@pytest.mark.parametrize("header, expected", [("3", 3.0), ("0", 0.0), ("2.5", 2.5)])
def test_429_waits_retry_after_seconds(script, header, expected):
    script.outcomes = [rate_limited(retry_after=header), ok("GET")]
    client, waits = make_client()
    client.get(PATH)
    assert waits == [expected]


def test_429_waits_retry_after_http_date(script):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    script.outcomes = [rate_limited(retry_after=when), ok("GET")]
    client, waits = make_client(api_timeout=30)
    client.get(PATH)
    assert len(waits) == 1
    assert 27.0 <= waits[0] <= 30.5


@pytest.mark.parametrize("meta, expected", [(7, 7.0), (2.5, 2.5), ("4", 4.0)])
def test_429_waits_meta_retry_after(script, meta, expected):
    script.outcomes = [rate_limited(meta=meta), ok("POST")]
    client, waits = make_client()
    client.post(PATH, BODY)
    assert waits == [expected]
    assert script.methods == ["POST", "POST"]


def test_429_header_wins_over_meta(script):
    script.outcomes = [rate_limited(retry_after=4, meta=60), ok("GET")]
    client, waits = make_client()
    client.get(PATH)
    assert waits == [4.0]


def test_429_without_advice_uses_backoff_per_attempt(script, monkeypatch):
    seen = []

    def fake_backoff(attempt, rand=None):
        seen.append(attempt)
        return 0.25 + attempt

    monkeypatch.setattr(_api_retry, "backoff", fake_backoff)
    script.outcomes = [rate_limited(), rate_limited(), ok("PUT")]
    client, waits = make_client()
    client.put(ITEM, BODY)
    assert seen == [0, 1]
    assert waits == [0.25, 1.25]


def test_429_without_advice_waits_are_jittered_exponential(script):
    script.outcomes = [rate_limited(), rate_limited(), rate_limited(), ok("GET")]
    client, waits = make_client()
    client.get(PATH)
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)
        assert 0.5 * ceiling <= wait <= ceiling


@pytest.mark.parametrize("attempt, rand, expected", [
    (0, 0.0, 0.5 * BACKOFF_BASE),
    (0, 1.0, 1.0 * BACKOFF_BASE),
    (1, 0.0, 1.0 * BACKOFF_BASE),
    (3, 0.5, 6.0 * BACKOFF_BASE),
    (4, 1.0, 16.0 * BACKOFF_BASE),
    (5, 1.0, BACKOFF_CAP),
    (10, 1.0, BACKOFF_CAP),
    (10, 0.0, BACKOFF_CAP / 2),
    (50, 0.5, BACKOFF_CAP * 0.75),
])
def test_backoff_is_capped_and_jittered_between_half_and_all(attempt, rand, expected):
    assert backoff(attempt, rand=lambda: rand) == pytest.approx(expected)


def test_backoff_constants():
    assert BACKOFF_CAP == 30.0
    assert MAX_ADVISED_WAIT == 120.0


@pytest.mark.parametrize("attempt", range(0, 12))
def test_backoff_default_random_stays_in_band(attempt):
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)
    for dummy in range(20):
        assert 0.5 * ceiling <= backoff(attempt) <= ceiling


@pytest.mark.parametrize("hint", [{"retry_after": 600}, {"meta": 600}, {"retry_after": 121}])
def test_429_advised_wait_too_long_fails_at_once(script, hint):
    script.outcomes = [rate_limited(**hint)]
    client, waits = make_client(api_timeout=300)  # a budget above 120 s: the single-wait cap decides
    err = failure(client, "GET")
    assert script.methods == ["GET"]
    assert waits == []
    assert err.status == 429
    assert "asked to wait" in err.message
    assert "more than the 120 s" in err.message
    assert "%.0f s" % float(list(hint.values())[0]) in err.message
    assert "GET %s" % PATH in err.message


def test_429_advised_wait_at_the_limit_is_honoured(script):
    script.outcomes = [rate_limited(meta=MAX_ADVISED_WAIT), ok("GET")]
    client, waits = make_client(api_timeout=80)  # a rate-limit budget of 3 x 80 / 2 = 120 s
    client.get(PATH)
    assert waits == [MAX_ADVISED_WAIT]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_429_retries_exhausted(script, method):
    script.outcomes = [rate_limited(meta=1)] * 3
    client, waits = make_client(api_retries=2)
    err = failure(client, method, ITEM)
    assert script.methods == [method] * 3
    assert waits == [1.0, 1.0]
    assert err.status == 429
    assert err.maybe_applied is False
    assert "rate-limited" in err.message
    assert "429" in err.message
    assert "3 time(s)" in err.message
    assert "api_retries=2" in err.message
    assert "%s %s" % (method, ITEM) in err.message


def test_429_with_no_retries_allowed_sends_once(script):
    script.outcomes = [rate_limited(meta=1)]
    client, waits = make_client(api_retries=0)
    err = failure(client, "POST")
    assert script.methods == ["POST"]
    assert waits == []
    assert "1 time(s)" in err.message
    assert "api_retries=0" in err.message


# --------------------------------------------------------------------------- 5xx


@pytest.mark.parametrize("status", SERVER_ERROR_CODES)
@pytest.mark.parametrize("method", IDEMPOTENT)
def test_server_errors_are_retried_for_idempotent_methods(script, method, status):
    script.outcomes = [response(status, text="oops"), response(status, text="oops"), ok(method)]
    client, waits = make_client()
    assert call(client, method, ITEM) == ok(method).json()
    assert script.methods == [method] * 3
    assert len(waits) == 2


@pytest.mark.parametrize("status", SERVER_ERROR_CODES)
@pytest.mark.parametrize("method", IDEMPOTENT)
def test_server_errors_exhausted(script, method, status):
    script.outcomes = [response(status, text="upstream failed")] * 4
    client, waits = make_client(api_retries=3)
    err = failure(client, method, ITEM)
    assert script.methods == [method] * 4
    assert len(waits) == 3
    assert err.status == status
    assert "HTTP %s" % status in err.message
    assert "4 attempt(s)" in err.message
    assert "%s %s" % (method, ITEM) in err.message
    assert err.maybe_applied is (method != "GET")


@pytest.mark.parametrize("status", SERVER_ERROR_CODES)
@pytest.mark.parametrize("method", NOT_IDEMPOTENT)
def test_server_errors_are_never_retried_for_post_and_put(script, method, status):
    script.outcomes = [response(status, text="upstream failed")]
    client, waits = make_client(api_retries=5)
    err = failure(client, method, ITEM)
    assert script.methods == [method]
    assert waits == []
    assert err.status == status
    assert err.maybe_applied is True
    assert "may have been applied" in err.message
    assert "1 attempt(s)" in err.message


# --------------------------------------------------------------------------- connection errors


@pytest.mark.parametrize("make_error", [connect_refused, connect_timeout], ids=["refused", "connect-timeout"])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_connect_phase_errors_are_retried_for_every_method(script, method, make_error):
    script.outcomes = [make_error(), make_error(), ok(method)]
    client, waits = make_client()
    assert call(client, method, ITEM) == ok(method).json()
    assert script.methods == [method] * 3
    assert len(waits) == 2


@pytest.mark.parametrize("method", ALL_METHODS)
def test_connect_refused_exhausted_is_not_maybe_applied(script, method):
    script.outcomes = [connect_refused()] * 3
    client, waits = make_client(api_retries=2)
    err = failure(client, method, ITEM)
    assert script.methods == [method] * 3
    assert err.maybe_applied is False
    assert "could not connect to %s" % BASE in err.message
    assert "may have been applied" not in err.message
    assert "%s %s" % (method, ITEM) in err.message


def test_connect_timeout_exhausted_names_api_timeout(script):
    script.outcomes = [connect_timeout()] * 2
    client, waits = make_client(api_retries=1, api_timeout=11)
    err = failure(client, "POST")
    assert script.methods == ["POST", "POST"]
    assert err.maybe_applied is False
    assert "api_timeout=11" in err.message


@pytest.mark.parametrize("make_error", [read_timeout, remote_disconnected], ids=["read-timeout", "dropped"])
@pytest.mark.parametrize("method", IDEMPOTENT)
def test_after_send_errors_are_retried_for_idempotent_methods(script, method, make_error):
    script.outcomes = [make_error(), ok(method)]
    client, waits = make_client()
    assert call(client, method, ITEM) == ok(method).json()
    assert script.methods == [method] * 2
    assert len(waits) == 1


@pytest.mark.parametrize("make_error", [read_timeout, remote_disconnected], ids=["read-timeout", "dropped"])
@pytest.mark.parametrize("method", NOT_IDEMPOTENT)
def test_after_send_errors_are_never_retried_for_post_and_put(script, method, make_error):
    script.outcomes = [make_error()]
    client, waits = make_client(api_retries=5)
    err = failure(client, method, ITEM)
    assert script.methods == [method]
    assert waits == []
    assert err.maybe_applied is True
    assert err.status is None
    assert "may have been applied" in err.message
    assert "%s %s" % (method, ITEM) in err.message


@pytest.mark.parametrize("make_error", [read_timeout, remote_disconnected], ids=["read-timeout", "dropped"])
def test_after_send_errors_exhausted_on_get_are_not_maybe_applied(script, make_error):
    script.outcomes = [make_error()] * 3
    client, waits = make_client(api_retries=2)
    err = failure(client, "GET")
    assert script.methods == ["GET"] * 3
    assert err.maybe_applied is False
    assert "may have been applied" not in err.message


def test_read_timeout_message_names_api_timeout(script):
    script.outcomes = [read_timeout()]
    client, waits = make_client(api_retries=0, api_timeout=17)
    err = failure(client, "GET")
    assert "api_timeout=17" in err.message
    assert "GET %s" % PATH in err.message


def test_dropped_connection_message_names_the_error(script):
    script.outcomes = [remote_disconnected()]
    client, waits = make_client(api_retries=0)
    err = failure(client, "PUT", ITEM)
    assert "connection failed before an answer arrived" in err.message
    assert "PUT %s" % ITEM in err.message


def test_tls_failure_message_names_validate_certs(script):
    script.outcomes = [certificate_rejected()]
    client, waits = make_client(api_retries=0)
    err = failure(client, "GET")
    assert "TLS verification failed" in err.message
    assert "validate_certs" in err.message
    assert "GET %s" % PATH in err.message


def test_tls_failure_message_names_the_ca_bundle_variable_in_use(script, monkeypatch, tmp_path):
    # With REQUESTS_CA_BUNDLE set, the bundle the user chose is the first suspect, not validate_certs.
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("not a certificate")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    script.outcomes = [certificate_rejected()]
    client, waits = make_client(api_retries=0)
    err = failure(client, "GET")
    assert "CURL_CA_BUNDLE=%s" % bundle in err.message, err.message


@pytest.mark.parametrize("method", NOT_IDEMPOTENT)
def test_certificate_rejected_means_nothing_was_sent(script, method):
    # Verification fails in the TLS handshake, before the request is written.
    script.outcomes = [certificate_rejected()]
    client, waits = make_client(api_retries=0)
    err = failure(client, method, ITEM)
    assert err.maybe_applied is False
    assert "may have been applied" not in err.message


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_after_send_error_exhausted_on_writes_is_maybe_applied(script, method):
    script.outcomes = [read_timeout()] * 2
    client, waits = make_client(api_retries=1)
    err = failure(client, method, ITEM)
    assert script.methods == [method, method]
    assert err.maybe_applied is True


def test_post_refused_then_rate_limited_then_created(script):
    script.outcomes = [connect_refused(), rate_limited(meta=2), ok("POST")]
    client, waits = make_client()
    assert client.post(PATH, BODY) == OK_DOC
    assert script.methods == ["POST"] * 3
    assert waits[1] == 2.0


# --------------------------------------------------------------------------- DELETE


@pytest.mark.parametrize("first", [
    lambda: response(500, text="oops"),
    lambda: response(503, text="oops"),
    read_timeout,
    remote_disconnected,
], ids=["500", "503", "read-timeout", "dropped"])
def test_delete_404_after_ambiguous_attempt_counts_as_deleted(script, first):
    script.outcomes = [first(), response(404, NOT_FOUND)]
    client, waits = make_client()
    assert client.delete(ITEM) == {}
    assert script.methods == ["DELETE", "DELETE"]


def test_delete_plain_404_is_an_error(script):
    script.outcomes = [response(404, NOT_FOUND)]
    client, waits = make_client()
    err = failure(client, "DELETE", ITEM)
    assert script.methods == ["DELETE"]
    assert err.status == 404
    assert "Specified Record Not Found" in err.message


def test_delete_404_after_rate_limit_is_an_error(script):
    # A 429 was refused, so the DELETE was never applied: a 404 then means the key was not there.
    script.outcomes = [rate_limited(meta=1), response(404, NOT_FOUND)]
    client, waits = make_client()
    err = failure(client, "DELETE", ITEM)
    assert err.status == 404


def test_delete_connect_refused_then_404_is_an_error(script):
    script.outcomes = [connect_refused(), response(404, NOT_FOUND)]
    client, waits = make_client()
    err = failure(client, "DELETE", ITEM)
    assert err.status == 404


def test_get_404_after_5xx_is_an_error(script):
    script.outcomes = [response(500, text="x"), response(404, NOT_FOUND)]
    client, waits = make_client()
    err = failure(client, "GET")
    assert err.status == 404


# --------------------------------------------------------------------------- error messages


@pytest.mark.parametrize("entry, shown, hidden", [
    ({"detail": "D-text", "message": "M-text", "title": "T-text", "code": "C-text"},
     "D-text", ["M-text", "T-text", "C-text"]),
    ({"message": "M-text", "title": "T-text", "code": "C-text"}, "M-text", ["T-text", "C-text"]),
    ({"title": "T-text", "code": "C-text"}, "T-text", ["C-text"]),
    ({"code": "C-text"}, "C-text", []),
])
def test_error_detail_order(script, entry, shown, hidden):
    assert error_detail(json.dumps({"errors": [entry]})) == shown
    script.outcomes = [response(400, {"errors": [entry]})]
    client, waits = make_client()
    err = failure(client, "POST")
    assert shown in err.message
    for text in hidden:
        assert text not in err.message


def test_error_detail_joins_several_errors():
    body = {"errors": [{"detail": "name is blank"}, {"detail": "allowed_ips is invalid",
                                                     "source": {"pointer": "/data/attributes/allowed_ips"}}]}
    assert error_detail(json.dumps(body)) == "name is blank; allowed_ips is invalid (at /data/attributes/allowed_ips)"


def test_newer_service_error_format(script):
    script.outcomes = [response(401, {"errors": [{"code": "UNAUTHORIZED", "message": "Invalid token"}]})]
    client, waits = make_client()
    err = failure(client, "GET")
    assert "Invalid token" in err.message
    assert "UNAUTHORIZED" not in err.message


def test_top_level_message_is_used(script):
    script.outcomes = [response(400, {"message": "bad request body"})]
    client, waits = make_client()
    err = failure(client, "POST")
    assert "bad request body" in err.message


def test_422_includes_pointer_and_exposes_it(script):
    body = {"errors": [{"code": "invalid", "status": "422", "title": "Unprocessable",
                        "detail": "is not a valid IP", "source": {"pointer": "/data/attributes/allowed_ips"},
                        "meta": {"attribute": "allowed_ips"}}]}
    script.outcomes = [response(422, body)]
    client, waits = make_client()
    err = failure(client, "POST")
    assert script.methods == ["POST"]
    assert err.status == 422
    assert err.pointer == "/data/attributes/allowed_ips"
    assert "is not a valid IP (at /data/attributes/allowed_ips)" in err.message
    assert err.maybe_applied is False


def test_pointer_is_none_without_source(script):
    script.outcomes = [response(400, {"errors": [{"detail": "bad"}]})]
    client, waits = make_client()
    assert failure(client, "POST").pointer is None


def test_html_502_body_is_summarised(script):
    html = ("<html><head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1>"
            "</center>" + "<p>filler</p>" * 60 + "TAIL-MARKER</body></html>")
    script.outcomes = [response(502, text=html, headers={"Content-Type": "text/html"})]
    client, waits = make_client(api_retries=0)
    err = failure(client, "GET")
    assert script.methods == ["GET"]
    assert "HTML" in err.message
    assert "502 Bad Gateway" in err.message
    assert "TAIL-MARKER" not in err.message
    assert len(err.message) < 600


def test_html_body_recognised_without_content_type(script):
    script.outcomes = [response(400, text="<!DOCTYPE html><html><body>Bad</body></html>")]
    client, waits = make_client()
    assert "HTML" in failure(client, "POST").message


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_malformed_json_success_body_on_reads_and_patches(script, method):
    script.outcomes = [response(200, text='{"data": [')]
    client, waits = make_client()
    err = failure(client, method)
    assert script.methods == [method]
    assert "not valid JSON" in err.message
    assert "HTTP 200" in err.message
    assert err.maybe_applied is (method != "GET")


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_malformed_json_success_body_on_create_or_rotate_is_maybe_applied(script, method):
    script.outcomes = [response(201 if method == "POST" else 200, text="<html>created</html>")]
    client, waits = make_client()
    err = failure(client, method)
    assert script.methods == [method]
    assert err.maybe_applied is True
    assert "not valid JSON" in err.message
    assert "may have been applied" in err.message


def test_json_success_body_that_is_not_an_object(script):
    script.outcomes = [response(200, [1, 2])]
    client, waits = make_client()
    err = failure(client, "GET")
    assert "not an object" in err.message


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_empty_success_body_on_create_or_rotate_is_maybe_applied(script, method):
    script.outcomes = [response(201 if method == "POST" else 200, text="  ")]
    client, waits = make_client()
    err = failure(client, method)
    assert script.methods == [method]
    assert err.maybe_applied is True
    assert "empty body" in err.message
    assert "%s %s" % (method, PATH) in err.message


@pytest.mark.parametrize("method, status", [("DELETE", 200), ("DELETE", 204), ("PATCH", 200), ("GET", 200)])
def test_empty_success_body_elsewhere_is_empty_dict(script, method, status):
    script.outcomes = [response(status, text="")]
    client, waits = make_client()
    assert call(client, method, ITEM) == {}


def test_401_message(script):
    script.outcomes = [response(401, {"errors": [{"status": "401", "detail": "Unauthorized"}]})]
    client, waits = make_client()
    err = failure(client, "GET")
    assert script.methods == ["GET"]
    assert "Authentication failed" in err.message
    assert "auth_token" in err.message
    for name in ENV_VARS:
        assert name in err.message


def test_403_message_mentions_read_only(script):
    script.outcomes = [response(403, text="Forbidden", headers={"Content-Type": "text/plain"})]
    client, waits = make_client()
    err = failure(client, "PATCH", ITEM)
    assert script.methods == ["PATCH"]
    assert "read-only" in err.message


def test_404_message_has_the_api_detail(script):
    script.outcomes = [response(404, NOT_FOUND)]
    client, waits = make_client()
    err = failure(client, "PUT", ITEM)
    assert "Specified Record Not Found" in err.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_http_error_names_method_path_and_status(script, method, status):
    script.outcomes = [response(status, {"errors": [{"detail": "nope"}]})] * 6
    client, waits = make_client(api_retries=0)
    err = failure(client, method, ITEM)
    assert "%s %s" % (method, ITEM) in err.message
    assert "HTTP %s" % status in err.message
    assert err.method == method
    assert err.path == ITEM
    assert err.status == status


@pytest.mark.parametrize("method", ALL_METHODS)
def test_4xx_are_never_retried(script, method):
    script.outcomes = [response(400, {"errors": [{"detail": "nope"}]})]
    client, waits = make_client(api_retries=5)
    failure(client, method)
    assert script.methods == [method]
    assert waits == []


# --------------------------------------------------------------------------- the token stays secret


def _echo(text):
    return text.replace("{T}", TOKEN)


FAILURES = {
    "401-detail-echo": lambda: [response(401, {"errors": [{"detail": _echo("token {T} is invalid")}]})],
    "401-message-echo": lambda: [response(401, {"errors": [{"code": "UNAUTHORIZED", "message": _echo("bad {T}")}]})],
    "403-text-echo": lambda: [response(403, text=_echo("Forbidden for {T}"), headers={"Content-Type": "text/plain"})],
    "404-title-echo": lambda: [response(404, {"errors": [{"title": _echo("{T} not found")}]})],
    "422-pointer-echo": lambda: [response(422, {"errors": [{"detail": "bad", "source": {"pointer": _echo("/{T}")}}]})],
    "top-level-message-echo": lambda: [response(400, {"message": _echo("token={T}")})],
    "500-html-echo": lambda: [response(500, text=_echo("<html><body>Authorization: {T}</body></html>"),
                                       headers={"Content-Type": "text/html"})],
    "502-html-token-at-snippet-edge": lambda: [response(502, text=_echo("<html>" + "x" * 100 + " {T}</html>"),
                                                        headers={"Content-Type": "text/html"})],
    "502-text-token-at-snippet-edge": lambda: [response(502, text=_echo("y" * 110 + "{T}"))],
    "200-malformed-json-echo": lambda: [response(200, text=_echo('{"token": "{T}"'))],
    "200-malformed-json-token-at-edge": lambda: [response(200, text=_echo("z" * 105 + "{T}"))],
    "429-exhausted-echo": lambda: [response(429, {"errors": [{"detail": _echo("slow down {T}")}]})],
    "429-too-long": lambda: [response(429, {"errors": [{"detail": _echo("{T}"), "meta": {"retry_after": 900}}]})],
    "read-timeout-echo": lambda: [TransportFailure("answer", socket.timeout(_echo("read timed out for {T}")))],
    "connection-echo": lambda: [TransportFailure("answer", ConnectionResetError(_echo("dropped {T}")))],
    "ssl-echo": lambda: [TransportFailure("tls", ssl.SSLError(_echo("certificate error {T}")))],
    "proxy-echo": lambda: [TransportFailure("proxy", OSError(_echo("Tunnel connection failed: {T}")))],
    "empty-body": lambda: [response(200, text="")],
}


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_token_never_appears_in_error_messages(script, kind, method):
    script.outcomes = FAILURES[kind]()
    client, waits = make_client(api_retries=0)
    if kind == "empty-body" and method == "GET":
        assert client.get(PATH) == {}
        return
    err = failure(client, method, ITEM)
    for text in (err.message, str(err), repr(err.args)):
        assert TOKEN not in text
        leaked = [window for window in token_windows() if window in text]
        assert leaked == [], "part of the token leaked: %r in %r" % (leaked, text)


# --------------------------------------------------------------------------- connection options


@pytest.mark.parametrize("url", ["http://127.0.0.1", "http://127.0.0.1:8080", "http://localhost:3000",
                                 "http://[::1]:8080", "http://[::1]", "HTTP://LOCALHOST",
                                 "https://api.latitude.sh", "https://api.example.test:8443/base"])
def test_api_url_allowed(url):
    assert validate_api_url(url) == url


@pytest.mark.parametrize("url, expected", [
    ("https://api.latitude.sh/", "https://api.latitude.sh"),
    ("https://api.latitude.sh///", "https://api.latitude.sh"),
    ("  https://api.latitude.sh/  ", "https://api.latitude.sh"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
])
def test_api_url_trailing_slash_stripped(url, expected):
    assert validate_api_url(url) == expected


def test_client_uses_stripped_api_url(script):
    script.outcomes = [ok("GET")]
    client, waits = make_client(api_url="http://127.0.0.1:8080/")
    client.get(PATH)
    assert script.calls[0]["url"] == "http://127.0.0.1:8080" + PATH


@pytest.mark.parametrize("url", ["http://api.example.com", "http://api.latitude.sh", "http://10.0.0.1",
                                 "http://localhost.example.com", "http://[2001:db8::1]"])
def test_api_url_plain_http_to_remote_host_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "api_url" in info.value.message
    assert "plain http" in info.value.message
    assert "https://" in info.value.message


@pytest.mark.parametrize("url", ["api.latitude.sh", "ftp://api.latitude.sh", "", "   ", None, "https://",
                                 "file:///etc/passwd", "//api.latitude.sh"])
def test_api_url_without_http_scheme_or_host_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "api_url" in info.value.message
    assert "http(s)" in info.value.message


@pytest.mark.parametrize("url", ["https://api.latitude.sh/?x=1", "https://api.latitude.sh/#frag"])
def test_api_url_query_or_fragment_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "api_url" in info.value.message


@pytest.mark.parametrize("overrides, option", [
    (dict(api_timeout=0), "api_timeout"),
    (dict(api_timeout=-5), "api_timeout"),
    (dict(api_retries=-1), "api_retries"),
    (dict(api_url="http://api.example.com"), "api_url"),
    (dict(api_url="ftp://x"), "api_url"),
])
def test_bad_connection_options_refused_before_any_request(script, overrides, option):
    with pytest.raises(ConfigError) as info:
        make_client(**overrides)
    assert option in info.value.message
    assert script.calls == []


@pytest.mark.parametrize("token", ["", "   ", None, "\n"])
def test_blank_auth_token_refused_naming_env_vars(script, token):
    with pytest.raises(ConfigError) as info:
        make_client(auth_token=token)
    assert "auth_token" in info.value.message
    for name in ENV_VARS:
        assert name in info.value.message
    assert script.calls == []


def test_zero_retries_and_minimum_timeout_accepted():
    assert validate_connection(params(api_retries=0, api_timeout=1)) == BASE


def test_config_error_is_a_latitude_error():
    assert issubclass(ConfigError, LatitudeError)


# --------------------------------------------------------------------------- error_detail / advised_wait edge cases


@pytest.mark.parametrize("body, expected", [
    ("", "empty response body"),
    ("   \n ", "empty response body"),
    ("plain failure", "non-JSON response body: plain failure"),
    ("<html><b>down</b></html>", "non-JSON (HTML) response body: <html><b>down</b></html>"),
])
def test_error_detail_non_json(body, expected):
    assert error_detail(body) == expected


def test_error_detail_html_by_content_type():
    assert error_detail("Bad Gateway", "text/html; charset=utf-8").startswith("non-JSON (HTML) response body")


def test_error_detail_snippet_is_short_and_single_line():
    detail = error_detail("line one\n\n   line two " + "w" * 500)
    assert "\n" not in detail
    assert "line one line two" in detail
    assert len(detail) <= len("non-JSON response body: ") + 120


@pytest.mark.parametrize("doc, must_contain", [
    ({"foo": "bar-value"}, "bar-value"),
    ({"errors": "boom-string"}, "boom-string"),
    ({"errors": {"detail": "dict-detail"}}, "dict-detail"),
    ({"errors": []}, "errors"),
    ({"errors": [None, 3, "str-entry"]}, "str-entry"),
    ({"errors": [{}]}, "errors"),
    ({"errors": [{"detail": ""}]}, "errors"),
    (["list", "doc"], "list"),
    ("a string", "a string"),
    (42, "42"),
    (None, "null"),
])
def test_error_detail_falls_back_to_a_snippet(doc, must_contain):
    detail = error_detail(json.dumps(doc))
    assert must_contain in detail
    assert "response body" in detail


def test_error_detail_skips_non_dict_entries():
    body = {"errors": ["oops", 7, None, {"detail": "the real one"}]}
    assert error_detail(json.dumps(body)) == "the real one"


def test_error_detail_source_not_a_dict():
    body = {"errors": [{"detail": "bad", "source": "/data/attributes/name"}]}
    assert error_detail(json.dumps(body)) == "bad"


def test_error_detail_pointer_only():
    body = {"errors": [{"source": {"pointer": "/data/attributes/name"}}]}
    assert "(at /data/attributes/name)" in error_detail(json.dumps(body))


def test_error_detail_top_level_message_when_errors_empty():
    assert error_detail(json.dumps({"errors": [], "message": "top"})) == "top"


@pytest.mark.parametrize("headers, body, expected", [
    ({}, None, None),
    ({}, {"foo": 1}, None),
    ({}, {"errors": None}, None),
    ({}, {"errors": "x"}, None),
    ({}, {"errors": {"meta": {"retry_after": 5}}}, None),
    ({}, {"errors": [{"meta": None}]}, None),
    ({}, {"errors": [{"meta": "x"}]}, None),
    ({}, {"errors": [{"meta": {"retry_after": "soon"}}]}, None),
    ({}, {"errors": [{"meta": {}}, {"meta": {"retry_after": 4}}]}, 4.0),
    ({}, {"errors": [{"meta": None}, {"meta": {"retry_after": 4}}]}, 4.0),
    ({}, {"errors": [{"meta": {"retry_after": -3}}]}, None),
    ({}, [1, 2], None),
    ({"Retry-After": "-3"}, None, None),
    ({"Retry-After": "soon"}, {"errors": [{"meta": {"retry_after": 5}}]}, 5.0),
    ({"Retry-After": "soon"}, None, None),
    ({"Retry-After": ""}, {"errors": [{"meta": {"retry_after": 6}}]}, 6.0),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, 0.0),
])
def test_advised_wait_edge_cases(headers, body, expected):
    resp = response(429, body, headers=headers) if body is not None else response(429, text="", headers=headers)
    assert advised_wait(resp) == expected


def test_advised_wait_non_json_body():
    assert advised_wait(response(429, text="<html>Too Many Requests</html>")) is None


@pytest.mark.parametrize("entries", [
    ["oops", {"meta": {"retry_after": 9}}],
    [None, {"meta": {"retry_after": 9}}],
    [{"meta": "x"}, {"meta": {"retry_after": 9}}],
])
def test_advised_wait_skips_malformed_entries(entries):
    # Like error_detail, a malformed entry must not hide a later, usable retry_after.
    assert advised_wait(response(429, {"errors": entries})) == 9.0


# --------------------------------------------------------------------------- body decoding


def raw_answer(status, raw, content_type="application/vnd.api+json"):
    """An answer with these bytes and this Content-Type."""
    return Answer(status, {"Content-Type": content_type}, raw)


@pytest.fixture
def no_guessing():
    """The transport never guesses a charset from the bytes (requests did, without a charset): nothing to stop."""


def test_body_without_charset_is_read_as_utf8(script, no_guessing):
    doc = {"data": {"id": "tok_x1ZJrdx5qg4LV", "type": "api_keys", "attributes": {"name": "zürich-ops-é"}}}
    script.outcomes = [raw_answer(200, json.dumps(doc, ensure_ascii=False).encode("utf-8"))]
    client, waits = make_client()
    assert client.get(ITEM)["data"]["attributes"]["name"] == "zürich-ops-é"


def test_error_body_without_charset_is_read_as_utf8(script, no_guessing):
    err = {"errors": [{"code": "unprocessable_entity", "status": "422", "detail": "Nom déjà utilisé"}]}
    script.outcomes = [raw_answer(422, json.dumps(err, ensure_ascii=False).encode("utf-8"))]
    client, waits = make_client()
    message = failure(client, "POST").message
    assert "HTTP 422: Nom déjà utilisé" in message


def test_declared_charset_is_kept(script, no_guessing):
    script.outcomes = [raw_answer(400, "Requête refusée".encode("latin-1"), content_type="text/plain; charset=ISO-8859-1")]
    client, waits = make_client()
    assert "Requête refusée" in failure(client, "PATCH").message
