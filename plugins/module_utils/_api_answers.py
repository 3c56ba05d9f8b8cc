# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The mapping of answers to errors: what a message may quote, and masked how.

Imported by ``_api.py`` only when an answer or a transport failure becomes a ``LatitudeError``: a
run whose requests succeed never compiles this file. Private to the collection.
"""

import json
import os
import re
import socket
import time

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import SERVER_ERRORS, TOKEN_ENV_VARS
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_connection import ca_bundle_variable
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_retry import RETRY_ON_SERVER_ERROR
from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import LatitudeError

MASK = "********"
# An error body is looked at up to this many characters: only its start (or its errors[] list) is ever
# quoted, and masking a hostile 16 MiB body took seconds of CPU after the attempt's deadline.
ERROR_BODY_LOOKED_AT = 65536

# A value under a key named ``token`` (or ``…_token``), in any quoting or escaping: "token": "…",
# \"token\":\"…\", 'token': '…', &quot;token&quot;:&quot;…, \u0022token\u0022: …, token=…, token: …,
# "token": ["…"].
_QUOTE = r"""(?:\\*["']|&quot;|&#0*3[49];|&#[xX]0*2[27];|\\+u002[27])"""
_TOKEN_FIELD = re.compile(
    r"(?i)(\b[a-z_]*token%s?\s*[:=]\s*(?:[\[{(]\s*)?%s?)([^\s\"'\\&<>,;}\])]+)" % (_QUOTE, _QUOTE)
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
# Escapes that can hide a token or the word ``token`` from the patterns above: JSON \u escapes (\u0074),
# percent-encoding and HTML character references. Only printable ASCII other than the quote and the
# backslash is decoded, so that a JSON document stays one.
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})|&#[xX]([0-9a-fA-F]{1,6});|&#([0-9]{1,7});")


def _decoded(match):
    hex_code = match.group(1) or match.group(2) or match.group(3)
    code = int(hex_code, 16) if hex_code else int(match.group(4))
    char = chr(code) if code < 0x110000 else ""
    return char if " " <= char <= "~" and char not in "\"\\" else match.group(0)


def mask_secrets(text, secret=None):
    """``text`` with the admin token, every value of a ``token`` key and any 32+ hex run masked.

    Escaped characters (``\u0074oken``, ``token%3D…``, a token with ``\u0066`` in it) are decoded
    first, twice (for an escape of an escape), so that they cannot hide a secret.
    """
    text = text or ""
    for dummy in range(2):
        text = _ESCAPE.sub(_decoded, text)
    if secret:
        text = text.replace(secret, MASK)
        # The same token wrapped over lines by a page (whitespace or <br> between its characters).
        gap = r"(?:\s|<br\s*/?>)*"
        text = re.sub(gap.join(re.escape(char) for char in secret), MASK, text)
    text = _TOKEN_FIELD.sub(lambda match: match.group(1) + MASK, text)
    return _HEX_RUN.sub(MASK, text)


def error_detail(body_text, content_type="", quote=True):
    """Turn an error body into one short line: JSON:API ``errors[]`` first (§5), else a snippet.

    With ``quote=False`` (the answer to a POST or PUT, which may carry a token) no part of the
    body outside ``errors[]`` is quoted.
    """
    try:
        doc = json.loads(body_text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
        return _snippet(body_text, content_type, quote)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors:
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return doc["message"]
        return _json_snippet(body_text, quote)
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
    return "; ".join(parts) or _json_snippet(body_text, quote)


_NOT_QUOTED = " (not quoted: the answer to a create or rotate may hold a token)"


def _json_snippet(text, quote=True):
    if not quote:
        return "JSON response body without a usable errors[] list" + _NOT_QUOTED
    return "JSON response body without a usable errors[] list: %s" % " ".join(text.split())[:120]


def _snippet(text, content_type="", quote=True):
    text = " ".join((text or "").split())
    if not text:
        return "empty response body"
    kind = "non-JSON (HTML) response body" if "html" in (content_type or "").lower() or text.startswith("<") \
        else "non-JSON response body"
    if not quote:
        return kind + _NOT_QUOTED
    return "%s: %s" % (kind, text[:120])


def _first_pointer(body_text):
    try:
        errors = json.loads(body_text).get("errors") or []
        return (errors[0].get("source") or {}).get("pointer")
    except (ValueError, AttributeError, IndexError, TypeError, RecursionError):
        return None


def _tls_refused(failure):
    """True when the TLS handshake failed (a certificate refused, no common protocol), not the connection under it."""
    if failure.phase != "tls":
        return False
    import ssl  # loaded already: the connection was an https one
    if isinstance(failure.cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)):
        return False  # the connection under the handshake was closed (a busy load balancer): tried again
    return isinstance(failure.cause, (ssl.SSLError, ssl.CertificateError))


class AnswerErrors(object):
    """Turns failed answers and transport failures into LatitudeError; every message is masked."""

    def __init__(self, secret, timeout, retries):
        self.secret = secret
        self.timeout = timeout
        self.retries = retries

    @staticmethod
    def permanent(failure):
        """True for a TransportFailure no retry cures: a refused certificate (or another failed TLS
        handshake), a proxy variable naming a proxy that cannot be used, a CA bundle that cannot be loaded."""
        return failure.phase in ("proxy-config", "tls-config") or _tls_refused(failure)

    def mask(self, text):
        return mask_secrets(text, self.secret)

    def http_error(self, method, path, response, text, maybe_applied):
        status = response.status_code
        text = self.mask(text[:ERROR_BODY_LOOKED_AT])
        # Masked again once decoded: a JSON string may spell a token with \u escapes.
        detail = self.mask(error_detail(text, response.headers.get("Content-Type", ""),
                                        quote=method not in ("POST", "PUT")))
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
        elif status < 200:
            message += ". It is not a final answer (no JSON:API client expects one)%s" % (
                "; the request may have been applied" if maybe_applied else "")
        elif status in SERVER_ERRORS:
            message += ". The API kept failing after %s attempt(s)" % (
                self.retries + 1 if method in RETRY_ON_SERVER_ERROR else 1)
            if maybe_applied:
                message += "; the request may have been applied"
        return LatitudeError(
            message, method, path, status, maybe_applied=maybe_applied, pointer=_first_pointer(text)
        )

    def redirect_error(self, method, path, response, maybe_applied):
        """A 3xx answer: redirects are never followed; the message names where it pointed (scheme and host only)."""
        where = ""
        try:
            from urllib.parse import urlsplit
            target = urlsplit((response.headers.get("Location") or "").strip())
            if target.hostname:
                where = " to %s://%s" % (target.scheme or "http", target.netloc.rpartition("@")[2])
        except (ValueError, TypeError):  # a port out of range, unbalanced brackets
            pass
        message = (
            "Latitude API request %s %s was answered with HTTP %s, a redirect%s. Redirects are never "
            "followed (a create or rotate would be sent twice, or sent where api_url does not point): "
            "set api_url to the address the API answers at, such as https://api.latitude.sh."
            % (method, path, response.status_code, self.mask(where))
        )
        return LatitudeError(message, method, path, response.status_code, maybe_applied=maybe_applied)

    def too_large(self, method, path, status, limit):
        written = method != "GET"
        return LatitudeError(
            "Latitude API request %s %s was answered with HTTP %s and a body larger than %d MiB, which is not "
            "read: the answer was not understood%s. Check that api_url points at the Latitude.sh API."
            % (method, path, status, limit // (1024 * 1024), "; the change may have been applied" if written else ""),
            method, path, status, maybe_applied=written,
        )

    def rate_limit_error(self, method, path, count, started, refusal, maybe_applied):
        message = (
            "Latitude API request %s %s was rate-limited (HTTP 429) %s time(s) over %.1f s and "
            "gave up%s. The API kept rate-limiting this token (60 reads and 20 writes per minute per key): "
            "wait a minute, raise api_retries, or spread the work over more runs."
            % (method, path, count, time.time() - started, refusal)
        )
        return LatitudeError(message, method, path, 429, maybe_applied=maybe_applied)

    def unreadable_success(self, method, path, response, text):
        written = method != "GET"
        if not text.strip():
            return LatitudeError(
                "%s %s returned HTTP %s with an empty body: the change may have been applied "
                "but its result was not received." % (method, path, response.status_code),
                method, path, response.status_code, maybe_applied=True,
            )
        try:
            json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
            return LatitudeError(
                "%s %s returned HTTP %s with a body that is not valid JSON (%s)%s."
                % (method, path, response.status_code,
                   _snippet(self.mask(text[:ERROR_BODY_LOOKED_AT]), quote=method not in ("POST", "PUT")),
                   "; the change may have been applied" if written else ""),
                method, path, response.status_code, maybe_applied=written,
            )
        return LatitudeError(
            "%s %s returned HTTP %s with an unexpected JSON document (not an object)."
            % (method, path, response.status_code),
            method, path, response.status_code, maybe_applied=written,
        )

    def transport_error(self, method, path, failure, base_url):
        """The message of a TransportFailure, by its phase; never quotes the proxy URL (it may hold a password)."""
        phase, cause, sent = failure.phase, failure.cause, failure.sent
        if phase == "proxy-config":
            what = str(cause)
        elif phase == "tls-config":
            what = ("the CA bundle (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when set) could not be loaded (%s): name a "
                    "readable PEM file in the variable or unset it" % type(cause).__name__)
        elif isinstance(cause, socket.timeout):
            what = self._no_answer()
        elif phase == "proxy":
            what = ("the proxy named by HTTPS_PROXY or ALL_PROXY could not be reached or refused the connection "
                    "(%s): check it, or name the API's host in NO_PROXY" % type(cause).__name__)
        elif _tls_refused(failure):
            name = ca_bundle_variable()
            bundle = "%s=%s" % (name, os.environ[name]) if name else None
            what = ("TLS verification failed (%s)%s; fix the certificate%s, or set validate_certs=false for a "
                    "test endpoint" % (type(cause).__name__, " against the CA bundle of %s" % bundle if bundle else "",
                                       " or that CA bundle" if bundle else ""))
        elif phase == "resolve":
            what = "could not connect to %s (its host name could not be resolved)" % base_url
        elif phase == "tls":
            what = "could not connect to %s: the connection was closed during the TLS handshake (%s)" % (
                base_url, type(cause).__name__)
        elif not sent:
            what = "could not connect to %s" % base_url
        else:
            what = "the connection failed before an answer arrived (%s)" % type(cause).__name__
        return self._transport(method, path, what, sent, timed_out=sent and isinstance(cause, socket.timeout))

    def budget_error(self, method, path, budget, maybe_applied, final=True):
        message = ("Latitude API request %s %s stopped: the task has spent its time budget of %.0f s on the API "
                   "((api_retries + 3) x api_timeout, here (%s + 3) x %s)" % (method, path, budget, self.retries,
                                                                              self.timeout))
        if maybe_applied:
            message += "; the request may have been applied"
        message += (". The API, or the way to it (name lookup, proxy, network), answered too slowly or not at all: "
                    "run the task again later, or raise api_timeout or api_retries.")
        return LatitudeError(message, method, path, None, maybe_applied=maybe_applied, final=final)

    def deadline_error(self, method, path, sent):
        return self._transport(method, path, self._no_answer(), sent, timed_out=sent)

    def interrupted(self, method, path, maybe_applied):
        what = "interrupted (Ctrl-C or SIGTERM) before its answer was read"
        return self._transport(method, path, what, maybe_applied, timed_out=False)

    def connect_deadline_error(self, method, path, host):
        what = ("could not connect to %s within api_timeout=%s s (name lookup, connect, proxy tunnel and TLS "
                "handshake); nothing was sent" % (host, self.timeout))
        return self._transport(method, path, what, False, timed_out=False)

    def _no_answer(self):
        return ("no answer within api_timeout=%s s (the whole answer, from connecting to its last byte, must "
                "arrive within api_timeout)" % self.timeout)

    def _transport(self, method, path, what, sent, timed_out):
        message = "Latitude API request %s %s failed: %s" % (method, path, what)
        if sent and method in ("POST", "PUT", "PATCH", "DELETE"):
            message += "; the request may have been applied"
        return LatitudeError(message, method, path, None, maybe_applied=sent and method != "GET",
                             timed_out=timed_out)
