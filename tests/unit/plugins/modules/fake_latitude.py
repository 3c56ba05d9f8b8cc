# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A scripted Latitude API for the module tests, and builders for its answers.

The fake replaces ``LatitudeClient._exchange``, the one seam of the transport (one attempt:
an ``Answer``, or a phase-tagged ``TransportFailure``); each test lists the exact HTTP exchange it
expects. An unexpected or extra request fails the test at once, and a request that was
expected but never made fails it at teardown (see conftest.py).
"""

import http.client
import json
import socket
import ssl

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import Answer, TransportFailure

API_URL = "https://api.example.test"
AUTH_TOKEN = "5ec2e7a11ce0b0b5ec2e7a11ce0b0b0e1f2a"
NEW_TOKEN = "54ebfcfa2ad7f9fe0d4e081306554174d063"
PATH = "/auth/api_keys"


class AnsibleExitJson(Exception):
    """exit_json was called; ``args[0]`` holds the result."""


class AnsibleFailJson(Exception):
    """fail_json was called; ``args[0]`` holds the result."""


def http_response(status, body=None, text=None, headers=None, content_type="application/vnd.api+json; charset=utf-8"):
    """An Answer, as the transport returns it: ``body`` is sent as JSON (with ``content_type``), ``text`` as is."""
    all_headers = {}
    if text is not None:
        content = text.encode("utf-8")
    elif body is not None:
        content = json.dumps(body).encode("utf-8")
        all_headers["Content-Type"] = content_type
    else:
        content = b""
    all_headers.update(headers or {})
    return Answer(status, all_headers, content)


# The failures of one attempt, as the transport raises them: the phase says whether the request was sent.

def connect_refused():
    return TransportFailure("connect", ConnectionRefusedError(111, "Connection refused"))


def connect_timeout():
    return TransportFailure("connect", socket.timeout("timed out"))


def read_timeout():
    return TransportFailure("answer", socket.timeout("timed out"))


def remote_disconnected():
    """The connection dropped after the request was written."""
    return TransportFailure("answer", http.client.RemoteDisconnected("Remote end closed connection without response"))


def certificate_rejected():
    """The server's certificate failed verification during the handshake."""
    return TransportFailure("tls", ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"))


def key_resource(key_id, name, read_only=False, allowed_ips=None, token_last_slice="aaaaa", token=None):
    attributes = {
        "name": name,
        "api_version": "2023-06-01",
        "token_last_slice": token_last_slice,
        "read_only": read_only,
        "allowed_ips": allowed_ips,
        "last_used_at": None,
        "user": {"id": "user_Wel4PnEAmauQYZz3Vz83CkyV2BW", "email": "ops@example.com"},
        "created_at": "2026-01-14T15:56:29+00:00",
        "updated_at": "2026-01-14T15:56:29+00:00",
    }
    if token is not None:
        attributes["token"] = token
    return {"id": key_id, "type": "api_keys", "attributes": attributes}


def normalized(resource):
    attributes = resource["attributes"]
    return {
        "id": resource["id"],
        "name": attributes["name"],
        "read_only": bool(attributes["read_only"]),
        "allowed_ips": list(attributes["allowed_ips"] or []),
        "token_last_slice": attributes["token_last_slice"],
        "api_version": attributes["api_version"],
        "last_used_at": attributes["last_used_at"],
        "created_at": attributes["created_at"],
        "updated_at": attributes["updated_at"],
        "user": dict(attributes["user"]),
    }


def list_answer(*resources):
    return http_response(200, {"data": list(resources), "meta": {}})


def item_answer(resource, status=200):
    return http_response(status, {"data": resource, "meta": {}})


class FakeLatitudeAPI(object):
    """A scripted exchange of (method, url, json body) -> answer (an Answer or an exception to raise)."""

    def __init__(self):
        self.expected = []
        self.calls = []
        self.problems = []

    def expect(self, method, path, body=None, answer=None):
        self.expected.append((method, API_URL + path, body, answer))
        return self

    def __call__(self, client, method, path, body, deadline):
        url = client.base_url + path
        self.calls.append((method, url, body))
        if not self.expected:
            self._problem("unexpected extra request %s %s %r" % (method, url, body))
        want_method, want_url, want_body, answer = self.expected.pop(0)
        if (method, url, body) != (want_method, want_url, want_body):
            self._problem("expected %s %s %r, got %s %s %r" % (want_method, want_url, want_body, method, url, body))
        if client.headers.get("Authorization") != AUTH_TOKEN:
            self._problem("request sent without the raw auth token")
        if deadline is None or not deadline.seconds > 0:
            self._problem("request sent without a deadline")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _problem(self, text):
        self.problems.append(text)
        raise AssertionError(text)

    @property
    def exchange(self):
        return [(method, url[len(API_URL):]) for method, url, body in self.calls]

    def verify(self):
        assert self.problems == []
        left = [(method, url[len(API_URL):]) for method, url, body, answer in self.expected]
        assert left == [], "expected requests that were never sent: %r" % (left,)
