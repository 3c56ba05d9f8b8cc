# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Offline stand-in for the Latitude.sh ``/auth/api_keys`` API.

Python 3.8+ standard library only. Run it as a program (see ``--help`` and
README.md beside this file), or in process with ``Sandbox``; ``Control`` is a
client for the ``/_sandbox/`` control API. Section numbers (``§N``) refer to
the collection's API contract for ``/auth/api_keys``.
"""

import argparse
import ipaddress
import json
import math
import os
import secrets
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_PATH = "/auth/api_keys"
CONTROL_PREFIX = "/_sandbox/"
API_VERSION = "2023-06-01"
DEFAULT_KEY_NAME = "Name of the API Key"  # create_api_key default (§2)
JSON_API = "application/vnd.api+json; charset=utf-8"
CONTROL_JSON = "application/json"
BODY_TYPES = ("application/json", "application/vnd.api+json")
WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
RATE_LIMITS = {"read": 60, "write": 20}  # per key and window (§5)
ID_ALPHABET = string.ascii_letters + string.digits
READ_ONLY_DETAIL = "This API key is read-only and cannot perform write operations"
MALFORMED_JSON = b'{"data": ['
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
GATEWAY_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
FAULT_KINDS = (
    "status", "drop_after_apply", "drop_before_apply", "delay",
    "malformed_json", "html_502", "empty_body", "gateway_504_apply_later",
)
DEFAULT_SEED = {
    "teams": [
        {"name": "platform", "keys": [{"name": "ci-deployer"}, {"name": "monitoring", "read_only": True}]},
        {"name": "data", "keys": [{"name": "ci-deployer"}, {"name": "monitoring", "read_only": True}]},
    ]
}


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _now():
    """Current UTC time as ``YYYY-MM-DDTHH:MM:SS+00:00`` (§3)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _random_id(prefix, length):
    return prefix + "".join(secrets.choice(ID_ALPHABET) for dummy in range(length))


def _new_token():
    """36 lowercase hex characters, like the spec's examples (§3)."""
    return secrets.token_hex(18)


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _append_line(path, line):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _write_atomic(path, text):
    """Write ``text`` to ``path`` so that a reader never sees a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _phrase(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_token(headers):
    """The token of ``Authorization: <token>`` or ``Authorization: Bearer <token>`` (§1)."""
    value = (headers.get("Authorization") or "").strip()
    parts = value.split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip()
    return value


def _path_key_id(path):
    """The ``{api_key_id}`` of an item path, else None."""
    prefix = API_PATH + "/"
    rest = path.rstrip("/")[len(prefix):] if path.startswith(prefix) else ""
    return urllib.parse.unquote(rest) if rest and "/" not in rest else None


# --------------------------------------------------------------------------
# Replies and API errors
# --------------------------------------------------------------------------

class Reply:
    """One HTTP answer; ``drop`` means: close the connection without answering."""

    def __init__(self, status=None, body=b"", content_type=JSON_API, headers=(), drop=False):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)
        self.drop = drop


DROP = Reply(drop=True)


def _json_reply(status, obj):
    return Reply(status, _dumps(obj))


class ApiError(Exception):
    """An API error answer: HTTP status, one JSON:API error object, extra headers."""

    def __init__(self, status, error, headers=()):
        super().__init__(error["detail"])
        self.status = status
        self.error = error
        self.headers = list(headers)

    def reply(self):
        return Reply(self.status, _dumps({"errors": [self.error]}), headers=self.headers)


def _api_error(status, code, title, detail, source=None, meta=None, headers=()):
    error = {"code": code, "status": str(status), "title": title, "detail": detail}
    if source:
        error["source"] = source
    error["meta"] = meta or {}
    return ApiError(status, error, headers)


def _not_found():
    """The verbatim Rails 404 (§5)."""
    return _api_error(404, "not_found", "Error", "Specified Record Not Found")


def _unauthorized():
    # The real 401 text is unknown (§10.6); this shape follows §5.
    return _api_error(401, "UNAUTHORIZED", "Unauthorized", "Invalid or missing API token")


def _forbidden(detail):
    # 401 or 403 for a non-allowlisted IP is unknown (§5, §10.6): 403 is modelled.
    return _api_error(403, "FORBIDDEN", "Forbidden", detail)


def _bad_request(detail, pointer=None):
    return _api_error(400, "bad_request", "Bad Request", detail, {"pointer": pointer} if pointer else None)


def _unprocessable(attribute, message):
    """A Rails-style attribute error: detail "Name can't be blank" and source.pointer (§5)."""
    detail = "%s %s" % (attribute.replace("_", " ").capitalize(), message)
    return _api_error(
        422, "unprocessable_entity", "Unprocessable Entity", detail,
        source={"pointer": "/data/attributes/" + attribute},
        meta={"attribute": attribute, "message": message},
    )


def _rate_limited(retry_after=None, headers=()):
    """The documented 429 body (§5); meta.retry_after only when known."""
    error = {
        "code": "RATE_LIMIT_EXCEEDED", "title": "Rate Limit Exceeded", "status": "429",
        "detail": "Too many requests. Please slow down and retry.",
        "meta": {} if retry_after is None else {"retry_after": retry_after},
    }
    return ApiError(429, error, headers)


# --------------------------------------------------------------------------
# Attribute validation (shared by the API and the seed)
# --------------------------------------------------------------------------

def _check_name(value):
    if not isinstance(value, str):
        raise _unprocessable("name", "must be a string")
    if not value.strip():
        raise _unprocessable("name", "can't be blank")
    return value


def _check_read_only(value):
    if not isinstance(value, bool):
        raise _unprocessable("read_only", "must be true or false")
    return value


def _check_allowed_ips(value):
    """A list of IPs or CIDRs, stored exactly as sent (normalisation is unknown, §10.2)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _unprocessable("allowed_ips", "must be an array of strings")
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _unprocessable("allowed_ips", "contains an invalid IP address or CIDR range: %r" % item) from None
    return list(value)


_CHECKS = {"name": _check_name, "read_only": _check_read_only, "allowed_ips": _check_allowed_ips}


def _validated(attributes, fields):
    """The given ``fields`` present in ``attributes``, validated (422 on error)."""
    return {field: _CHECKS[field](attributes[field]) for field in fields if field in attributes}


def _create_fields(attributes):
    """Attributes of a new key, with the create defaults (§2, §9)."""
    fields = {"name": DEFAULT_KEY_NAME, "read_only": False, "allowed_ips": []}
    fields.update(_validated(attributes, fields))
    return fields


def _document_attributes(request, key_id=None):
    """``data.attributes`` of a JSON:API request body (400 on a malformed document)."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and content_type not in BODY_TYPES:
        raise _api_error(415, "unsupported_media_type", "Unsupported Media Type",
                         "Send the body as application/json or application/vnd.api+json")
    try:
        document = json.loads(request.body.decode("utf-8"))
    except ValueError:
        raise _bad_request("The request body is not a valid JSON document") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise _bad_request("param is missing or the value is empty: data", "/data")
    if data.get("type") != "api_keys":
        raise _bad_request('data.type must be "api_keys"', "/data/type")
    if key_id is not None and "id" in data and data["id"] != key_id:
        # Whether the real API checks this is unknown (§10.4): a mismatch is rejected.
        raise _bad_request("data.id does not match the API key id in the URL", "/data/id")
    attributes = data.get("attributes")
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise _bad_request("data.attributes must be an object", "/data/attributes")
    return attributes


def _route(method, path):
    """The operation for ``method path``: ``(name, api_key_id)``; 404 or 405 otherwise."""
    key_id = _path_key_id(path)
    if path.rstrip("/") == API_PATH:
        operations = {"GET": "list", "POST": "create"}
    elif key_id is not None:
        # No single-key GET exists (§2, §10.9): GET on an item is an unknown route.
        operations = {"PUT": "rotate", "PATCH": "update", "DELETE": "delete"}
        if method == "GET":
            raise _not_found()
    else:
        raise _not_found()
    if method not in operations:
        allow = ", ".join(operations)
        raise _api_error(405, "method_not_allowed", "Method Not Allowed",
                         "%s is not allowed here; use %s" % (method, allow), headers=[("Allow", allow)])
    return operations[method], key_id


# --------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------

class ApiKey:
    """One API key: belongs to a team and to the user who created it."""

    def __init__(self, team, user, name, read_only=False, allowed_ips=()):
        self.id = _random_id("tok_", 13)
        self.team = team
        self.user = dict(user)
        self.name = name
        self.read_only = read_only
        self.allowed_ips = list(allowed_ips)
        self.token = None
        self.created_at = self.updated_at = _now()
        self.last_used_at = None

    def allows(self, address):
        """Whether a request from ``address`` (an ip_address) may use this key."""
        networks = (ipaddress.ip_network(item, strict=False) for item in self.allowed_ips)
        return not self.allowed_ips or any(address in network for network in networks)

    def resource(self, with_token=False, null_empty_ips=False):
        """The api_key JSON:API object (§3); PUT/PATCH answers show an empty allowlist as null."""
        attributes = {"name": self.name}
        if with_token:
            attributes["token"] = self.token
        attributes.update(
            token_last_slice=self.token[-5:],
            api_version=API_VERSION,
            read_only=self.read_only,
            allowed_ips=list(self.allowed_ips) or (None if null_empty_ips else []),
            created_at=self.created_at,
            updated_at=self.updated_at,
            last_used_at=self.last_used_at,
            user=dict(self.user),
        )
        return {"id": self.id, "type": "api_keys", "attributes": attributes}

    def state(self):
        """The key as the control API shows it, token included."""
        return {
            "id": self.id, "name": self.name, "token": self.token, "read_only": self.read_only,
            "allowed_ips": list(self.allowed_ips), "user": dict(self.user), "created_at": self.created_at,
            "updated_at": self.updated_at, "last_used_at": self.last_used_at,
        }


class Team:
    """A team: its admin user and its keys in creation order."""

    def __init__(self, name, user):
        self.name = name
        self.user = dict(user)
        self.keys = {}
        self.admin_key_id = None

    def state(self):
        admin = self.keys.get(self.admin_key_id)
        return {
            "name": self.name, "admin_token": admin.token if admin else None,
            "user": dict(self.user), "keys": [key.state() for key in self.keys.values()],
        }


def _team_spec(raw):
    """Validate one seed team; fill in a random admin token and user (ValueError on error)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise ValueError("each team needs a non-empty string 'name'")
    name = raw["name"]
    admin_token = raw.get("admin_token") or _new_token()
    if not isinstance(admin_token, str) or not admin_token.strip() or admin_token != admin_token.strip():
        raise ValueError("team %r: admin_token must be a non-blank string without surrounding spaces" % name)
    user = raw.get("user") or {}
    if not isinstance(user, dict):
        raise ValueError("team %r: user must be an object" % name)
    user = {"id": user.get("id") or _random_id("user_", 27), "email": user.get("email") or "admin@%s.test" % name}
    raw_keys = raw.get("keys") or []
    if not isinstance(raw_keys, list) or not all(isinstance(key, dict) for key in raw_keys):
        raise ValueError("team %r: keys must be a list of objects" % name)
    try:
        keys = [_create_fields(key) for key in raw_keys]
    except ApiError as exc:
        raise ValueError("team %r: %s" % (name, exc)) from None
    return {"name": name, "admin_token": admin_token, "user": user, "keys": keys}


def load_seed(seed=None):
    """Team specs from a seed: None (two default teams), a dict, or a JSON file path.

    Random admin tokens are drawn here, once, so that a reset keeps them.
    """
    if seed is None:
        seed = DEFAULT_SEED
    elif not isinstance(seed, dict):
        with open(seed, encoding="utf-8") as handle:
            seed = json.load(handle)
    teams = seed.get("teams") if isinstance(seed, dict) else None
    if not isinstance(teams, list):
        raise ValueError("the seed must be an object with a 'teams' list")
    specs = [_team_spec(team) for team in teams]
    if len({spec["name"] for spec in specs}) != len(specs):
        raise ValueError("team names in the seed must be unique")
    if len({spec["admin_token"] for spec in specs}) != len(specs):
        raise ValueError("admin tokens in the seed must be unique")
    return specs


# --------------------------------------------------------------------------
# Rate limits, faults, request log (no locks of their own: State holds the lock)
# --------------------------------------------------------------------------

class RateLimiter:
    """Fixed windows per authenticating key: 60 GET and 20 writes per window (§5)."""

    def __init__(self, enabled=False, window=60.0, retry_after_header=False):
        self.enabled = enabled
        self.window = float(window)
        self.retry_after_header = retry_after_header
        self._windows = {}

    def settings(self):
        return {"enabled": self.enabled, "window": self.window, "retry_after_header": self.retry_after_header}

    def check(self, key_id, kind):
        """Count one request of ``kind`` ("read"/"write"); raise the 429 when over the limit."""
        if not self.enabled:
            return
        now = time.monotonic()
        start, counts = self._windows.get(key_id, (None, None))
        if start is None or now >= start + self.window:
            start, counts = now, {"read": 0, "write": 0}
            self._windows[key_id] = (start, counts)
        if counts[kind] >= RATE_LIMITS[kind]:
            raise self._exceeded(start + self.window - now)
        counts[kind] += 1

    def _exceeded(self, remaining):
        # Whole seconds as documented; short (test) windows keep milliseconds.
        retry_after = math.ceil(remaining) if self.window >= 10 else round(remaining, 3)
        headers = [("Retry-After", str(math.ceil(remaining)))] if self.retry_after_header else []
        return _rate_limited(retry_after, headers)


def _fault_rule(spec):
    """Validate a fault rule posted to the control API (ValueError on error)."""
    if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
        raise ValueError("kind must be one of: %s" % ", ".join(FAULT_KINDS))
    rule = dict(spec)
    rule["method"] = str(spec.get("method", "*")).upper()
    rule["path"] = str(spec.get("path", "*"))
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError("times must be a positive integer")
    status = spec.get("status")
    if (spec["kind"] == "status" or status is not None) and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError("status must be an integer HTTP status")
    if spec["kind"] in ("delay", "gateway_504_apply_later") and (
            isinstance(spec.get("seconds"), bool) or not isinstance(spec.get("seconds"), (int, float))
            or spec["seconds"] < 0):
        raise ValueError("a %s fault needs 'seconds'" % spec["kind"])
    if "body" in spec and not isinstance(spec["body"], str):
        raise ValueError("body must be a string")
    rule["times"] = rule["remaining"] = times
    return rule


def _rule_matches(rule, method, path):
    if rule["method"] not in ("*", method):
        return False
    pattern = rule["path"]
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


def _status_fault(rule):
    """The answer of a ``status`` fault: a canned JSON:API error, or the rule's own body."""
    status = rule["status"]
    headers = []
    if rule.get("retry_after_header") is not None:
        headers.append(("Retry-After", str(rule["retry_after_header"])))
    if "body" in rule:
        return Reply(status, rule["body"].encode("utf-8"), rule.get("content_type", JSON_API), headers)
    canned = {401: _unauthorized, 404: _not_found, 429: _rate_limited}
    if status in canned:
        error = canned[status]().error
    else:
        phrase = _phrase(status)
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        error = _api_error(status, code, phrase, "Injected fault: %s" % phrase).error
    if rule.get("retry_after") is not None:
        error["meta"]["retry_after"] = rule["retry_after"]
    return Reply(status, _dumps({"errors": [error]}), headers=headers)


def _fault_reply(rule, applied):
    """What a fault sends instead of the real answer ``applied`` (None if not applied)."""
    kind = rule["kind"]
    if kind in ("drop_after_apply", "drop_before_apply"):
        return DROP
    if kind == "html_502":
        return Reply(502, NGINX_502, "text/html")
    if kind == "status":
        return _status_fault(rule)
    status = rule.get("status") or (applied.status if applied else 200)
    if kind == "malformed_json":
        return Reply(status, MALFORMED_JSON)
    return Reply(status, b"", content_type=None)  # empty_body


class RequestLog:
    """API requests in memory (for the control API) and as JSON lines in a file."""

    def __init__(self, path=None):
        self.path = path
        self.entries = []
        self._seq = 0

    def record(self, method, path, status, meta, fault, started_at, duration):
        self._seq += 1
        entry = {
            "seq": self._seq, "ts": started_at, "method": method, "path": path, "status": status,
            "team": meta["team"], "key_id": meta["key_id"], "fault": fault,
            "duration_ms": round(duration * 1000, 3),
        }
        self.entries.append(entry)
        if self.path:
            _append_line(self.path, json.dumps(entry))

    def since(self, seq=None):
        return [entry for entry in self.entries if seq is None or entry["seq"] > seq]

    def clear(self):
        """Forget the entries kept in memory; ``seq`` keeps counting, the file is kept."""
        self.entries = []


class ControlError(Exception):
    """A failed control API request."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------
# The sandbox state: API and control API, behind one lock
# --------------------------------------------------------------------------

class Request:
    """The parts of an HTTP request that the API looks at."""

    def __init__(self, method, path, headers, body, client_ip):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.client_ip = client_ip


CONTROL_ROUTES = {
    "/_sandbox/health": {"GET": "_control_health"},
    "/_sandbox/state": {"GET": "_control_state"},
    "/_sandbox/tokens": {"GET": "_control_tokens"},
    "/_sandbox/teams": {"POST": "_control_add_team"},
    "/_sandbox/reset": {"POST": "_control_reset"},
    "/_sandbox/log": {"GET": "_control_log", "DELETE": "_control_clear_log"},
    "/_sandbox/faults": {"GET": "_control_faults", "POST": "_control_add_fault", "DELETE": "_control_clear_faults"},
    "/_sandbox/rate_limit": {"POST": "_control_rate_limit"},
    "/_sandbox/latency": {"POST": "_control_latency"},
    "/_sandbox/clock": {"GET": "_control_clock", "POST": "_control_set_clock"},
    "/_sandbox/key_times": {"POST": "_control_key_times"},
}


class State:
    """Teams, keys, tokens, faults, rate limits and the request log, behind one lock."""

    def __init__(self, seed_specs, latency_ms=0, rate_limit=False, rate_window=60.0,
                 retry_after_header=False, log_path=None, token_journal=None):
        self.lock = threading.RLock()
        self._seed_specs = seed_specs
        self._initial = (latency_ms, rate_limit, rate_window, retry_after_header)
        self._journal = token_journal
        self._issued = []
        self._issued_set = set()
        self.log = RequestLog(log_path)
        self.last_activity = time.monotonic()
        self.reset()

    def reset(self):
        """Back to the seed and the start-up settings; clears the log, faults and counters."""
        latency_ms, rate_limit, rate_window, retry_after_header = self._initial
        with self.lock:
            self.clock_offset = 0.0
            self.teams = {}
            self.by_token = {}
            for spec in self._seed_specs:
                self._add_team(spec)
            self.log.clear()
            self.faults = []
            self.latency_ms = latency_ms
            self.limiter = RateLimiter(rate_limit, rate_window, retry_after_header)

    # -- keys and tokens ---------------------------------------------------

    def _remember(self, token):
        if token in self._issued_set:
            return
        self._issued_set.add(token)
        self._issued.append(token)
        if self._journal:
            _append_line(self._journal, token)

    def _set_token(self, key, token):
        self.by_token.pop(key.token, None)
        key.token = token
        self.by_token[token] = key
        self._remember(token)

    def _new_key(self, team, user, name, read_only=False, allowed_ips=(), token=None):
        key = ApiKey(team.name, user, name, read_only, allowed_ips)
        key.created_at = key.updated_at = self.now()
        self._set_token(key, token or _new_token())
        team.keys[key.id] = key
        return key

    def _add_team(self, spec):
        if spec["name"] in self.teams:
            raise ControlError(409, "team %r already exists" % spec["name"])
        if spec["admin_token"] in self.by_token:
            raise ControlError(409, "admin_token is already in use")
        team = Team(spec["name"], spec["user"])
        self.teams[team.name] = team
        team.admin_key_id = self._new_key(team, team.user, "admin", token=spec["admin_token"]).id
        for fields in spec["keys"]:
            self._new_key(team, team.user, **fields)
        return team

    # -- the API -------------------------------------------------------------

    def handle_api(self, request):
        """Answer one API request: latency, then a matching fault or the real handling."""
        started_at, started = time.time(), time.monotonic()
        with self.lock:
            self.last_activity = started
            latency_ms = self.latency_ms
        if latency_ms:
            time.sleep(latency_ms / 1000.0)
        rule = self._take_fault(request.method, request.path)
        if rule:
            reply, meta = self._faulted(rule, request)
        else:
            reply, meta = self._process(request)
        with self.lock:
            self.log.record(request.method, request.path, reply.status, meta,
                            rule and rule["kind"], started_at, time.monotonic() - started)
        return reply

    def _take_fault(self, method, path):
        """The first matching rule with times left (FIFO), decremented; or None."""
        with self.lock:
            for rule in self.faults:
                if rule["remaining"] and _rule_matches(rule, method, path):
                    rule["remaining"] -= 1
                    return dict(rule)
        return None

    def _faulted(self, rule, request):
        kind = rule["kind"]
        if kind == "delay":
            time.sleep(rule["seconds"])
            if rule.get("apply", True):
                return self._process(request)
            return DROP, self._identify(request)
        if kind == "gateway_504_apply_later":
            # A gateway gives up at once and answers 504, then passes the request on `seconds` later.
            timer = threading.Timer(rule["seconds"], self._process, args=(request,))
            timer.daemon = True
            timer.start()
            return Reply(504, GATEWAY_504, "text/html"), self._identify(request)
        is_write = request.method in WRITE_METHODS
        if kind == "drop_after_apply" or (kind in ("malformed_json", "empty_body") and is_write):
            applied, meta = self._process(request)
        else:
            applied, meta = None, self._identify(request)
        return _fault_reply(rule, applied), meta

    def _identify(self, request):
        """Log fields of a request that is not applied."""
        with self.lock:
            key = self.by_token.get(_request_token(request.headers))
        return {"team": key.team if key else None, "key_id": _path_key_id(request.path)}

    def _process(self, request):
        """Apply one API request; return ``(reply, log fields)``."""
        meta = {"team": None, "key_id": _path_key_id(request.path)}
        try:
            operation, key_id = _route(request.method, request.path)
            with self.lock:
                caller = self._authorize(request, meta)
                reply = getattr(self, "_api_" + operation)(caller, key_id, request, meta)
        except ApiError as exc:
            reply = exc.reply()
        return reply, meta

    def _authorize(self, request, meta):
        """The calling key: 401, 403 (IP or read-only) or 429 otherwise."""
        key = self.by_token.get(_request_token(request.headers))
        if key is None:
            raise _unauthorized()
        meta["team"] = key.team
        if not key.allows(request.client_ip):
            raise _forbidden("Requests from IP address %s are not allowed for this API key" % request.client_ip)
        is_write = request.method in WRITE_METHODS
        self.limiter.check(key.id, "write" if is_write else "read")
        key.last_used_at = self.now()
        if is_write and key.read_only:
            raise _forbidden(READ_ONLY_DETAIL)
        return key

    def _team_key(self, caller, key_id):
        """A key of the caller's team; another team's key is as unknown as a missing one."""
        key = self.teams[caller.team].keys.get(key_id)
        if key is None:
            raise _not_found()
        return key

    def _api_list(self, caller, _key_id, _request, _meta):
        keys = self.teams[caller.team].keys.values()
        return _json_reply(200, {"data": [key.resource() for key in keys], "meta": {}})

    def _api_create(self, caller, _key_id, request, meta):
        # Names are not unique (§10.3): a duplicate name creates another key.
        fields = _create_fields(_document_attributes(request))
        key = self._new_key(self.teams[caller.team], caller.user, **fields)
        meta["key_id"] = key.id
        return _json_reply(201, {"data": key.resource(with_token=True), "meta": {}})

    def _api_rotate(self, caller, key_id, request, _meta):
        # PUT applies a name, as the old lsh rename did; read_only and allowed_ips
        # are ignored (§2, §10.4).
        attributes = _document_attributes(request, key_id)
        key = self._team_key(caller, key_id)
        key.name = _validated(attributes, ("name",)).get("name", key.name)
        self._set_token(key, _new_token())
        # A rotate keeps the key (same id): created_at stays, as §3 defines it ("when the API Key
        # was created"). Whether the real API also moves updated_at on PUT is not documented (§2 PUT
        # semantics, §10.4); the sandbox moves it, like any change. So neither timestamp tells a
        # token's age: clients record the issue time themselves.
        key.updated_at = self.now()
        return _json_reply(200, {"data": key.resource(with_token=True, null_empty_ips=True), "meta": {}})

    def _api_update(self, caller, key_id, request, _meta):
        # A blank name is rejected on PATCH as on create (§10.3).
        attributes = _document_attributes(request, key_id)
        key = self._team_key(caller, key_id)
        for field, value in _validated(attributes, ("name", "read_only", "allowed_ips")).items():
            setattr(key, field, value)
        # Settings only (§2 PATCH, §9): updated_at moves, the token and its last slice do not.
        key.updated_at = self.now()
        return _json_reply(200, {"data": key.resource(null_empty_ips=True), "meta": {}})

    def _api_delete(self, caller, key_id, _request, _meta):
        # Deleting the key that authenticates this very request is allowed (§10.11).
        key = self._team_key(caller, key_id)
        del self.teams[caller.team].keys[key_id]
        self.by_token.pop(key.token, None)
        return _json_reply(200, {"meta": {}})

    # -- the control API -----------------------------------------------------

    def handle_control(self, method, path, query, body):
        """Answer one ``/_sandbox/`` request (JSON in and out, no auth)."""
        with self.lock:
            self.last_activity = time.monotonic()
        routes = CONTROL_ROUTES.get(path.rstrip("/"))
        try:
            if routes is None:
                raise ControlError(404, "unknown control endpoint %s" % path)
            if method not in routes:
                raise ControlError(405, "%s is not allowed on %s" % (method, path))
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ControlError(400, "the body must be a JSON object")
            with self.lock:
                status, result = getattr(self, routes[method])(payload, query)
        except ValueError as exc:
            status, result = 400, {"error": str(exc)}
        except ControlError as exc:
            status, result = exc.status, {"error": str(exc)}
        return Reply(status, _dumps(result), CONTROL_JSON)

    def _control_health(self, _payload, _query):
        return 200, {"ok": True}

    def _control_state(self, _payload, _query):
        return 200, {"teams": [team.state() for team in self.teams.values()]}

    def _control_tokens(self, _payload, _query):
        return 200, {"tokens": list(self._issued)}

    def _control_add_team(self, payload, _query):
        return 201, self._add_team(_team_spec(payload)).state()

    def _control_reset(self, _payload, _query):
        self.reset()
        return self._control_state(None, None)

    def _control_log(self, _payload, query):
        since = query.get("since", [None])[0]
        return 200, {"requests": self.log.since(None if since is None else int(since))}

    def _control_clear_log(self, _payload, _query):
        self.log.clear()
        return 200, {"requests": []}

    def _control_faults(self, _payload, _query):
        return 200, {"faults": [dict(rule) for rule in self.faults]}

    def _control_add_fault(self, payload, _query):
        rule = _fault_rule(payload)
        self.faults.append(rule)
        return 201, {"fault": dict(rule)}

    def _control_clear_faults(self, _payload, _query):
        self.faults = []
        return 200, {"faults": []}

    def _control_rate_limit(self, payload, _query):
        current = self.limiter
        enabled = payload.get("enabled", current.enabled)
        window = payload.get("window", current.window)
        header = payload.get("retry_after_header", current.retry_after_header)
        if not isinstance(enabled, bool) or not isinstance(header, bool):
            raise ValueError("enabled and retry_after_header must be booleans")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be a positive number of seconds")
        self.limiter = RateLimiter(enabled, window, header)
        return 200, self.limiter.settings()

    def _control_latency(self, payload, _query):
        ms = payload.get("ms")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
            raise ValueError("ms must be a number >= 0")
        self.latency_ms = ms
        return 200, {"ms": ms}

    # -- the sandbox clock and seeded timestamps -----------------------------

    def now(self, seconds_ago=0.0):
        """The sandbox clock (real UTC time + ``clock_offset``) minus ``seconds_ago``, in the §3 form."""
        return _stamp(datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset - seconds_ago))

    def _clock_state(self):
        return {"now": self.now(), "offset_seconds": self.clock_offset}

    def _control_clock(self, _payload, _query):
        return 200, self._clock_state()

    def _control_set_clock(self, payload, _query):
        given = [field for field in CLOCK_FIELDS if field in payload]
        unknown = sorted(set(payload) - set(CLOCK_FIELDS))
        if len(given) != 1 or unknown:
            raise ValueError("give exactly one of: %s" % ", ".join(CLOCK_FIELDS))
        field, value = given[0], payload[given[0]]
        if field == "now":
            target = _parse_stamp(value, "now")
            self.clock_offset = (target - datetime.now(timezone.utc)).total_seconds()
        else:
            seconds = _number(value, field) * (DAY_SECONDS if field == "shift_days" else 1)
            self.clock_offset = seconds if field == "offset_seconds" else self.clock_offset + seconds
        return 200, self._clock_state()

    def _control_key_times(self, payload, _query):
        key = self._seeded_key(payload)
        unknown = sorted(set(payload) - set(KEY_TIME_FIELDS) - {"id", "team", "name"})
        given = [field for field in KEY_TIME_FIELDS if field in payload]
        if unknown or not given:
            raise ValueError("give one or more of %s (and id, or team and name)" % ", ".join(KEY_TIME_FIELDS))
        values = {}
        for field in given:
            value = payload[field]
            if value is None and field == "last_used_at":
                values[field] = None
            elif isinstance(value, dict) and set(value) == {"days_ago"}:
                values[field] = self.now(_number(value["days_ago"], field + ".days_ago") * DAY_SECONDS)
            else:
                values[field] = _stamp(_parse_stamp(value, field))
        for field, value in values.items():
            setattr(key, field, value)
        return 200, {"id": key.id, "team": key.team, "name": key.name, "created_at": key.created_at,
                     "updated_at": key.updated_at, "last_used_at": key.last_used_at}

    def _seeded_key(self, payload):
        """The key a key_times request names: by ``id``, or by ``team`` and (unique) ``name``."""
        if "id" in payload:
            if not isinstance(payload["id"], str):
                raise ValueError("id must be a string")
            for team in self.teams.values():
                if payload["id"] in team.keys:
                    return team.keys[payload["id"]]
            raise ControlError(404, "no key has the id %r" % (payload["id"],))
        team = self.teams.get(payload.get("team"))
        if team is None:
            raise ControlError(404, "give id, or team and name: no team %r" % (payload.get("team"),))
        matches = [key for key in team.keys.values() if key.name == payload.get("name")]
        if len(matches) != 1:
            raise ControlError(404 if not matches else 409, "team %r has %d keys named %r; give id instead" % (
                team.name, len(matches), payload.get("name")))
        return matches[0]


# --------------------------------------------------------------------------
# Clock and timestamp helpers (control API: /_sandbox/clock, /_sandbox/key_times)
# --------------------------------------------------------------------------

DAY_SECONDS = 86400
CLOCK_FIELDS = ("now", "offset_seconds", "shift_seconds", "shift_days")
KEY_TIME_FIELDS = ("created_at", "updated_at", "last_used_at")


def _stamp(moment):
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SS+00:00`` (§3)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _parse_stamp(value, field):
    """An aware datetime from ISO 8601 (``Z``, ``+00:00``, any offset; naive means UTC); ValueError otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("%s must be an ISO 8601 time such as 2026-01-14T15:56:29+00:00, got %r" % (field, value)) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _number(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("%s must be a number" % field)
    return float(value)


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer has a Content-Length
    disable_nagle_algorithm = True  # else a keep-alive client's 2nd request stalls ~40 ms
    server_version = "latitude-sandbox"

    def do_GET(self):
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_bad_request("Invalid Content-Length or chunked body").reply())
            return
        url = urllib.parse.urlsplit(self.path)
        state = self.server.state
        if url.path.startswith(CONTROL_PREFIX):
            reply = state.handle_control(self.command, url.path, urllib.parse.parse_qs(url.query), body)
        else:
            reply = state.handle_api(Request(self.command, url.path, self.headers, body, self._client_ip()))
        self._send(reply)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET
    # Every other method reaches the same routing, which answers 405 with Allow on a known path
    # (404 elsewhere), instead of the standard library's 501 HTML page.
    do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = do_GET

    def __getattr__(self, name):
        # Any other method token (PROPFIND, FOO, ...): BaseHTTPRequestHandler looks up "do_" + method.
        if name.startswith("do_"):
            return self.do_GET
        raise AttributeError(name)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length)

    def _read_chunked(self):
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _client_ip(self):
        address = ipaddress.ip_address(self.client_address[0].split("%")[0])
        return getattr(address, "ipv4_mapped", None) or address

    def _send(self, reply):
        try:
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":  # an answer to HEAD has headers only (RFC 9110, 9.3.2)
                self.wfile.write(reply.body)
        except OSError:  # the client went away (e.g. after its read timeout)
            self.close_connection = True

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state, tls_context=None, verbose=False):
        self.state = state
        self.verbose = verbose
        self._connections = set()
        super().__init__(address, _Handler)
        self.tls = tls_context is not None
        if self.tls:
            # The handshake runs in the connection's own thread (finish_request).
            self.socket = tls_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request, client_address):
        with self.state.lock:
            self._connections.add(request)
        try:
            if self.tls:
                request.do_handshake()
            super().finish_request(request, client_address)
        finally:
            with self.state.lock:
                self._connections.discard(request)

    def close_connections(self):
        """Shut down open keep-alive connections so that a stopped sandbox answers nothing."""
        with self.state.lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class Sandbox:
    """The sandbox server in process: ``Sandbox(...).start()``, ``.url``, ``.stop()``.

    ``seed`` is None (two default teams), a dict or a JSON file path; ``tls`` is a
    ``(cert_pem, key_pem)`` pair. Also a context manager.
    """

    def __init__(self, seed=None, latency_ms=0, rate_limit=False, rate_window=60.0, log_path=None,
                 token_journal=None, tls=None, host="127.0.0.1", port=0, retry_after_header=False,
                 verbose=False):
        self.state = State(load_seed(seed), latency_ms, rate_limit, rate_window, retry_after_header,
                           log_path, token_journal)
        self.url = None
        self._address = (host, port)
        self._tls = tls
        self._verbose = verbose
        self._server = None
        self._thread = None

    def start(self):
        context = None
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
        server_class = _Server6 if ":" in self._address[0] else _Server
        self._server = server_class(self._address, self.state, context, self._verbose)
        host, port = self._server.server_address[:2]
        self.url = "%s://%s:%d" % ("https" if context else "http", "[%s]" % host if ":" in host else host, port)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="latitude-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._server = None

    @property
    def control(self):
        """A ``Control`` client for this sandbox (trusting its own certificate under TLS)."""
        context = ssl.create_default_context(cafile=self._tls[0]) if self._tls else None
        return Control(self.url, context)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class SandboxProcess:
    """The sandbox CLI as a child process on a free port: ``.url``, ``.control``, ``.stop()``.

    For callers that must not share their process with the server (timings, crash tests).
    ``args`` are extra CLI options (``--seed``, ``--log``, ``--latency-ms`` ...); the CLI's
    stdout and stderr go to ``output`` (a file path) or nowhere. The child stops by itself after
    ``exit_when_idle`` seconds without a request (None: never). Also a context manager.
    """

    def __init__(self, args=(), work_dir=None, output=None, tls=None, start_timeout=20.0, exit_when_idle=900):
        self._exit_when_idle = exit_when_idle
        self._work_dir = work_dir
        self._own_dir = None
        self._args = list(args)
        self._output_path = output
        self._tls = tls
        self._start_timeout = start_timeout
        self._output = None
        self.proc = None
        self.url = None
        self.control = None

    def start(self):
        if self._work_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="latitude-sandbox-")
            self._work_dir = self._own_dir.name
        url_file = os.path.join(self._work_dir, "sandbox.url")
        if os.path.exists(url_file):
            os.remove(url_file)
        command = [sys.executable, os.path.abspath(__file__), "--port", "0", "--url-file", url_file] + self._args
        if self._tls:
            command += ["--tls-cert", self._tls[0], "--tls-key", self._tls[1]]
        if self._exit_when_idle:
            # Should this process be killed before it stops the child, the child does not outlive it for long.
            command += ["--exit-when-idle", str(self._exit_when_idle)]
        if self._output_path:
            self._output = open(self._output_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            command, stdout=self._output or subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self._work_dir,
        )
        deadline = time.monotonic() + self._start_timeout
        # The CLI writes the URL file only once it listens.
        while not os.path.exists(url_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox did not start%s" % (
                    "; see %s" % self._output_path if self._output_path else ""))
            time.sleep(0.02)
        with open(url_file, encoding="utf-8") as handle:
            self.url = handle.read().strip()
        context = ssl.create_default_context(cafile=self._tls[0]) if self._tls else None
        self.control = Control(self.url, context)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None
            self._work_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# --------------------------------------------------------------------------
# Control API client
# --------------------------------------------------------------------------

class Control:
    """Client for the ``/_sandbox/`` control API (urllib only, never through a proxy)."""

    def __init__(self, url, context=None, timeout=10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        handlers = [urllib.request.ProxyHandler({})]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def _call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": CONTROL_JSON})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise ControlError(exc.code, message) from None

    def health(self):
        return self._call("GET", "/_sandbox/health")

    def state(self):
        return self._call("GET", "/_sandbox/state")

    def tokens(self):
        return self._call("GET", "/_sandbox/tokens")["tokens"]

    def admin_token(self, team):
        """The current token of ``team``'s admin key."""
        for entry in self.state()["teams"]:
            if entry["name"] == team:
                return entry["admin_token"]
        raise KeyError(team)

    def add_team(self, name, keys=(), admin_token=None):
        payload = {"name": name, "keys": list(keys)}
        if admin_token is not None:
            payload["admin_token"] = admin_token
        return self._call("POST", "/_sandbox/teams", payload)

    def reset(self):
        return self._call("POST", "/_sandbox/reset", {})

    def log(self, since=None):
        query = "" if since is None else "?since=%d" % since
        return self._call("GET", "/_sandbox/log" + query)["requests"]

    def clear_log(self):
        return self._call("DELETE", "/_sandbox/log")

    def fault(self, **rule):
        return self._call("POST", "/_sandbox/faults", rule)["fault"]

    def faults(self):
        return self._call("GET", "/_sandbox/faults")["faults"]

    def clear_faults(self):
        return self._call("DELETE", "/_sandbox/faults")

    def rate_limit(self, enabled, window=None, retry_after_header=False):
        payload = {"enabled": enabled, "retry_after_header": retry_after_header}
        if window is not None:
            payload["window"] = window
        return self._call("POST", "/_sandbox/rate_limit", payload)

    def latency(self, ms):
        return self._call("POST", "/_sandbox/latency", {"ms": ms})

    def clock(self):
        """``{"now": ..., "offset_seconds": ...}`` of the sandbox clock."""
        return self._call("GET", "/_sandbox/clock")

    def set_clock(self, **change):
        """One of ``now`` (ISO 8601), ``offset_seconds``, ``shift_seconds`` or ``shift_days``."""
        return self._call("POST", "/_sandbox/clock", change)

    def key_times(self, key_id=None, team=None, name=None, **times):
        """Seed ``created_at``, ``updated_at`` and/or ``last_used_at`` of one key (by id, or team and name).

        A value is an ISO 8601 time, ``{"days_ago": N}`` on the sandbox clock, or None (last_used_at only).
        """
        payload = dict(times)
        if key_id is not None:
            payload["id"] = key_id
        else:
            payload.update(team=team, name=name)
        return self._call("POST", "/_sandbox/key_times", payload)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parse_args(argv):
    parser = argparse.ArgumentParser(description="Offline stand-in for the Latitude.sh /auth/api_keys API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--url-file", help="write the base URL here once listening")
    parser.add_argument("--pid-file", help="write the process id here")
    parser.add_argument("--seed", help="JSON seed file (teams, admin tokens, keys)")
    parser.add_argument("--log", help="append one JSON line per API request")
    parser.add_argument("--token-journal", help="append every token issued or seeded")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before each API answer")
    parser.add_argument("--rate-limit", action="store_true", help="enforce 60 GET / 20 writes per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="rate-limit window in seconds")
    parser.add_argument("--retry-after-header", action="store_true", help="send Retry-After with a 429")
    parser.add_argument("--tls-cert", help="PEM certificate: serve https")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                        help="stop after this long without a request (a safety net for killed test runs)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.rate_window <= 0:
        parser.error("--rate-window must be positive")
    if args.exit_when_idle is not None and args.exit_when_idle <= 0:
        parser.error("--exit-when-idle must be positive")
    return args


def main(argv=None):
    """Run the sandbox until SIGTERM or SIGINT (or ``--exit-when-idle`` seconds without a request)."""
    args = _parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox = Sandbox(
            seed=args.seed, latency_ms=args.latency_ms, rate_limit=args.rate_limit,
            rate_window=args.rate_window, log_path=args.log, token_journal=args.token_journal,
            tls=(args.tls_cert, args.tls_key) if args.tls_cert else None, host=args.host,
            port=args.port, retry_after_header=args.retry_after_header, verbose=args.verbose,
        ).start()
    except (OSError, ValueError) as exc:
        print("latitude-sandbox: %s" % exc, file=sys.stderr)
        return 2
    print("latitude-sandbox listening on %s" % sandbox.url, flush=True)
    if args.pid_file:
        _write_atomic(args.pid_file, "%d\n" % os.getpid())
    if args.url_file:
        _write_atomic(args.url_file, sandbox.url + "\n")
    while not stop.wait(0.5):
        idle = time.monotonic() - sandbox.state.last_activity
        if args.exit_when_idle and idle > args.exit_when_idle:
            print("latitude-sandbox: no request for %.0f s, stopping" % idle, flush=True)
            break
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
