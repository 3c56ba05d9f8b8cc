# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The only code in this collection that speaks HTTP to the Latitude.sh API.

Private to the collection: the names here may change without notice.
The section numbers in comments (``§N``) refer to the collection's API contract
for ``/auth/api_keys``, summarised in ``docs/api-contract.md``.
"""

import email.utils
import ipaddress
import json
import random
import re
import ssl
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

# The modules import the errors from here, beside the client that raises them.
from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import ConfigError, LatitudeError

try:
    import requests
    from requests.exceptions import ConnectionError as _ConnectionError
    from requests.exceptions import ConnectTimeout, ReadTimeout, RequestException, SSLError
    from urllib3.exceptions import NewConnectionError

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

COLLECTION_VERSION = "0.1.0"
USER_AGENT = "ansible-latitudesh.cloud/%s" % COLLECTION_VERSION
DEFAULT_API_URL = "https://api.latitude.sh"
TOKEN_ENV_VARS = ["LATITUDESH_AUTH_TOKEN", "LATITUDESH_BEARER", "LATITUDESH_TOKEN"]

# Retry rules. A 429 was refused, never applied, so every method may send it again.
# A 5xx or a dropped connection may hide an applied write: only the methods whose
# repetition cannot create a second effect are sent again.
RETRY_ON_SERVER_ERROR = frozenset(["GET", "PATCH", "DELETE"])
SERVER_ERRORS = frozenset([500, 502, 503, 504])
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# The longest wait the API may ask for that we honour (the documented limit window is 60 s).
MAX_ADVISED_WAIT = 120.0


def api_argument_spec():
    """The connection options shared by every module (doc fragment ``latitudesh.cloud.api``)."""
    return dict(
        auth_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, TOKEN_ENV_VARS)),
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["LATITUDESH_API_URL"])),
        api_timeout=dict(type="int", default=30, fallback=(env_fallback, ["LATITUDESH_API_TIMEOUT"])),
        api_retries=dict(type="int", default=5, fallback=(env_fallback, ["LATITUDESH_API_RETRIES"])),
        validate_certs=dict(type="bool", default=True),
    )


def validate_api_url(api_url):
    """Return ``api_url`` without a trailing slash, or raise ConfigError naming the fix."""
    url = (api_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "api_url %r is not an absolute http(s) URL: give the scheme and host, for example "
            "https://api.latitude.sh (or set LATITUDESH_API_URL)." % url
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "api_url %r uses plain http to a host that is not on this machine: the token would "
            "travel unencrypted. Use https:// (plain http is allowed only for loopback addresses, "
            "such as the bundled sandbox)." % url
        )
    if parts.query or parts.fragment:
        raise ConfigError("api_url %r must not have a query string or fragment." % url)
    return url.rstrip("/")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_connection(params):
    """Check the connection options before any request; raise ConfigError naming the option."""
    if not (params.get("auth_token") or "").strip():
        raise ConfigError(
            "auth_token is empty: give auth_token or set one of %s." % ", ".join(TOKEN_ENV_VARS)
        )
    if params["api_timeout"] <= 0:
        raise ConfigError("api_timeout must be a positive number of seconds, got %s." % params["api_timeout"])
    if params["api_retries"] < 0:
        raise ConfigError("api_retries must be 0 or more, got %s." % params["api_retries"])
    return validate_api_url(params["api_url"])


def error_detail(body_text, content_type=""):
    """Turn an error body into one short line: JSON:API ``errors[]`` first (§5), else a snippet."""
    try:
        doc = json.loads(body_text)
    except ValueError:
        return _snippet(body_text, content_type)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors:
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return doc["message"]
        return _json_snippet(body_text)
    parts = []
    for err in errors:
        if not isinstance(err, dict):
            continue
        # §5: Rails errors carry detail/title/code; newer services use {code, message}.
        text = err.get("detail") or err.get("message") or err.get("title") or err.get("code") or ""
        pointer = (err.get("source") or {}).get("pointer") if isinstance(err.get("source"), dict) else None
        if pointer:
            text = "%s (at %s)" % (text or "invalid value", pointer)
        if text:
            parts.append(str(text))
    return "; ".join(parts) or _json_snippet(body_text)


def _json_snippet(text):
    return "JSON response body without a usable errors[] list: %s" % " ".join(text.split())[:120]


def _snippet(text, content_type=""):
    text = " ".join((text or "").split())
    if not text:
        return "empty response body"
    if "html" in (content_type or "").lower() or text.lstrip().startswith("<"):
        return "non-JSON (HTML) response body: %s" % text[:120]
    return "non-JSON response body: %s" % text[:120]


def _body_text(response):
    """The response body as text, decoded as UTF-8 when the answer names no charset.

    §1: the API sends ``application/vnd.api+json; charset=utf-8``; should a charset be missing (a
    proxy, another version), JSON is UTF-8 anyway (RFC 8259), and requests would otherwise guess one
    from the bytes: slow on a long list, and a short body can be guessed wrong.
    """
    if response.encoding is None:
        response.encoding = "utf-8"
    return response.text


def _first_pointer(body_text):
    try:
        errors = json.loads(body_text).get("errors") or []
        return (errors[0].get("source") or {}).get("pointer")
    except (ValueError, AttributeError, IndexError, TypeError):
        return None


def advised_wait(response):
    """Seconds the API asks us to wait: ``Retry-After`` first, then ``errors[].meta.retry_after`` (§5, §10.7)."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            parsed = email.utils.parsedate_tz(header)
            if parsed:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    for err in errors if isinstance(errors, list) else []:
        meta = err.get("meta") if isinstance(err, dict) else None
        value = meta.get("retry_after") if isinstance(meta, dict) else None
        if value is not None:
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                continue
    return None


def backoff(attempt, rand=random.random):
    """Jittered exponential backoff: between half and all of min(cap, base * 2**attempt)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    return ceiling * (0.5 + rand() / 2)


def _sent(exc):
    """False only when the request certainly never left this machine (a connect-phase error)."""
    if isinstance(exc, ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(exc, SSLError) and any(isinstance(arg, ssl.SSLCertVerificationError) for arg in getattr(reason, "args", ())):
        return False  # the certificate was refused during the handshake: nothing was sent
    return not isinstance(reason, NewConnectionError)


class LatitudeClient(object):
    """One ``requests.Session`` per module run, with the collection's auth, retry and error rules."""

    def __init__(self, params, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise ConfigError(missing_required_lib("requests"))
        self.base_url = validate_connection(params)
        self._token = params["auth_token"].strip()
        self.timeout = params["api_timeout"]
        self.retries = params["api_retries"]
        self._sleep = sleep
        self.session = requests.Session()
        self.session.verify = params["validate_certs"]
        self.session.headers.update({
            # §1: the SDKs send the raw token, without "Bearer ".
            "Authorization": self._token,
            "Accept": "application/vnd.api+json",
            "User-Agent": USER_AGENT,
        })

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def patch(self, path, body):
        return self.request("PATCH", path, body)

    def delete(self, path):
        return self.request("DELETE", path)

    def request(self, method, path, body=None):
        """Send one logical request; return the decoded JSON body ({} when empty)."""
        started = time.time()
        attempt = 0
        rate_limited = 0
        maybe_applied = False
        while True:
            try:
                response = self.session.request(
                    # verify per request: requests lets REQUESTS_CA_BUNDLE override the session's.
                    method, self.base_url + path, json=body, timeout=self.timeout, verify=self.session.verify,
                )
            except RequestException as exc:
                sent = _sent(exc)
                failure = self._transport_error(method, path, exc, sent)
                maybe_applied = maybe_applied or (sent and method != "GET")
                # A refused certificate stays refused: retrying it would only add backoff.
                retry = (not sent or method in RETRY_ON_SERVER_ERROR) and not isinstance(exc, SSLError)
                if retry and attempt < self.retries:
                    self._sleep(backoff(attempt))
                    attempt += 1
                    continue
                failure.maybe_applied = maybe_applied
                raise failure

            status = response.status_code
            if status == 429:
                rate_limited += 1
                wait = advised_wait(response)
                if attempt < self.retries and (wait is None or wait <= MAX_ADVISED_WAIT):
                    self._sleep(backoff(attempt) if wait is None else wait)
                    attempt += 1
                    continue
                raise self._rate_limit_error(method, path, response, rate_limited, started, wait, maybe_applied)
            if status in SERVER_ERRORS:
                maybe_applied = maybe_applied or method != "GET"
                if method in RETRY_ON_SERVER_ERROR and attempt < self.retries:
                    self._sleep(backoff(attempt))
                    attempt += 1
                    continue
            if status == 404 and method == "DELETE" and maybe_applied:
                # The first DELETE may have been applied before its answer was lost.
                return {}
            if status >= 400:
                raise self._http_error(method, path, response, maybe_applied)
            return self._decode(method, path, response)

    def _decode(self, method, path, response):
        text = _body_text(response)
        if not text.strip():
            if method in ("POST", "PUT"):
                raise LatitudeError(
                    "%s %s returned HTTP %s with an empty body: the change may have been applied "
                    "but its result was not received." % (method, path, response.status_code),
                    method, path, response.status_code, maybe_applied=True,
                )
            return {}
        try:
            doc = json.loads(text)
        except ValueError:
            raise LatitudeError(
                "%s %s returned HTTP %s with a body that is not valid JSON (%s)%s."
                % (method, path, response.status_code, _snippet(self._redact(text)),
                   "; the change may have been applied" if method != "GET" else ""),
                method, path, response.status_code, maybe_applied=method != "GET",
            )
        if not isinstance(doc, dict):
            raise LatitudeError(
                "%s %s returned HTTP %s with an unexpected JSON document (not an object)."
                % (method, path, response.status_code),
                method, path, response.status_code, maybe_applied=method != "GET",
            )
        return doc

    def _http_error(self, method, path, response, maybe_applied):
        status = response.status_code
        text = self._redact(_body_text(response))
        detail = error_detail(text, response.headers.get("Content-Type", ""))
        message = "Latitude API request %s %s failed with HTTP %s: %s" % (method, path, status, detail)
        if status == 401:
            message += (
                ". Authentication failed: check auth_token (or the environment variables %s) "
                "and that the key was not rotated or deleted." % ", ".join(TOKEN_ENV_VARS)
            )
        elif status == 403:
            message += (
                ". The token is not allowed to do this: it may be read-only (read-only keys can "
                "only send GET requests) or limited to other IP addresses (allowed_ips)."
            )
        elif status in SERVER_ERRORS:
            message += ". The API kept failing after %s attempt(s)" % (self.retries + 1 if method in RETRY_ON_SERVER_ERROR else 1)
            if maybe_applied:
                message += "; the request may have been applied"
        return LatitudeError(
            message, method, path, status, maybe_applied=maybe_applied, pointer=_first_pointer(text)
        )

    def _rate_limit_error(self, method, path, response, count, started, wait, maybe_applied):
        elapsed = time.time() - started
        message = (
            "Latitude API request %s %s was rate-limited (HTTP 429) %s time(s) over %.1f s and "
            "gave up" % (method, path, count, elapsed)
        )
        if wait is not None and wait > MAX_ADVISED_WAIT:
            message += ": the API asked to wait %.0f s, more than the %.0f s this module waits" % (wait, MAX_ADVISED_WAIT)
        else:
            message += " after api_retries=%s retries" % self.retries
        message += (
            ". The API kept rate-limiting this token (60 reads and 20 writes per minute per key): "
            "wait a minute, raise api_retries, or spread the work over more runs."
        )
        return LatitudeError(message, method, path, 429, maybe_applied=maybe_applied)

    def _transport_error(self, method, path, exc, sent):
        if isinstance(exc, SSLError):
            what = "TLS verification failed (%s); fix the certificate or set validate_certs=false for a test endpoint" % type(exc).__name__
        elif isinstance(exc, (ConnectTimeout, ReadTimeout)):
            what = "no answer within api_timeout=%s s" % self.timeout
        elif isinstance(exc, _ConnectionError) and not sent:
            what = "could not connect to %s" % self.base_url
        else:
            what = "the connection failed before an answer arrived (%s)" % type(exc).__name__
        message = "Latitude API request %s %s failed: %s" % (method, path, what)
        if sent and method in ("POST", "PUT", "PATCH", "DELETE"):
            message += "; the request may have been applied"
        return LatitudeError(
            message, method, path, None, maybe_applied=sent and method != "GET", timed_out=isinstance(exc, ReadTimeout)
        )

    def _redact(self, text):
        text = (text or "").replace(self._token, "********")
        # A cut or unreadable create/rotate answer may hold the new token: never quote it.
        return re.sub(r'("token"\s*:\s*")[^"]*', r"\1********", text)
