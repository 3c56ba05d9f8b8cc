# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The only code in this collection that speaks HTTP to the Latitude.sh API.

Private to the collection: the names here may change without notice.
The section numbers in comments (``§N``) refer to the collection's API contract
for ``/auth/api_keys``, summarised in ``docs/api-contract.md``. The rules of the transport
(which URL is accepted, how long a task may take, what is retried, what an error message may
quote) are listed in ``docs/reliability.md``; each has one home:

- ``check_api_url`` (here): the URL check, made with the parser that sends the request;
- ``LatitudeClient._send`` (here) and ``_api_connection``: one attempt (``_Connection``, its proxy tunnel and
  TLS), bounded end to end by ``api_timeout`` (``Deadline``), its answer read up to ``MAX_ANSWER_BYTES``, a
  redirect never followed;
- ``_api_retry.RetryPolicy``: what is sent again, how long to wait, and the cap on rate-limit waits;
- ``_api_answers.AnswerErrors``: answers and failures turned into ``LatitudeError`` with masked messages.

The transport is the standard library's ``http.client``: importing ``requests`` cost 60-90 ms per
task. ``LatitudeClient._exchange`` is its one seam (one attempt: an ``Answer``, or a ``TransportFailure``
tagged with the phase it failed in). Only what every run needs is loaded at start-up: the TLS context
(and certifi) only for an https URL, ``urllib.request`` only when a proxy variable is set, and
``_api_retry`` and ``_api_answers`` (with ``email.utils`` and ``random``) the first time a request is
retried or fails.
"""

import contextlib
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import threading
import time
from urllib.parse import quote, urlsplit

from ansible.module_utils.basic import env_fallback

from ansible_collections.latitudesh.cloud.plugins.module_utils._api_connection import (
    Answer,
    Deadline,
    Headers,
    TransportFailure,
    _Connection,
    _dropped,
    ca_bundle_variable,
    proxy_for,
    tls_context,
)
# The modules import the errors from here, beside the client that raises them.
from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import ConfigError, LatitudeError

COLLECTION_VERSION = "0.1.0"
USER_AGENT = "ansible-latitudesh.cloud/%s" % COLLECTION_VERSION
DEFAULT_API_URL = "https://api.latitude.sh"
TOKEN_ENV_VARS = ["LATITUDESH_AUTH_TOKEN", "LATITUDESH_BEARER", "LATITUDESH_TOKEN"]

# The longest api_timeout accepted: a bound on one attempt, and small enough for the socket layer.
MAX_API_TIMEOUT = 3600

# The largest answer read, once decoded (a list of a few thousand keys is well under 2 MiB). A larger
# one (or a gzip "bomb") would hold the task's memory, and its CPU once the bytes are in, without bound.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# The answers that may be sent again (for the methods of _api_retry.RETRY_ON_SERVER_ERROR).
SERVER_ERRORS = frozenset([500, 502, 503, 504])


def api_argument_spec():
    """The connection options shared by every module (doc fragment ``latitudesh.cloud.api``)."""
    return dict(
        auth_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, TOKEN_ENV_VARS)),
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["LATITUDESH_API_URL"])),
        api_timeout=dict(type="int", default=30, fallback=(env_fallback, ["LATITUDESH_API_TIMEOUT"])),
        api_retries=dict(type="int", default=5, fallback=(env_fallback, ["LATITUDESH_API_RETRIES"])),
        validate_certs=dict(type="bool", default=True),
    )


# --------------------------------------------------------------------------
# The URL check: the host that is checked is the host that is connected to
# --------------------------------------------------------------------------

def _unsafe_url_char(char):
    """Whitespace, control and format characters and the backslash: parsers disagree on them."""
    return char == "\\" or char.isspace() or not char.isprintable()


def _shown_url(url):
    """``url`` fit to quote in a message: without its query string and fragment (``?token=...``), and only its
    scheme when it holds an '@' anywhere (a password may hold '?', '#' or '/', and an '@' in a query would
    make the rest look like another host's)."""
    if "@" in url:
        scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/*", url)
        return (scheme.group(0) if scheme else "") + "..."
    return re.sub(r"[?#].*", "", url, flags=re.DOTALL)


# A host name as DNS spells it (letters of any script, for an internationalised name), or an IPv4 address.
_HOST_NAME = re.compile(r"^[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.?$")


def check_api_url(api_url):
    """Return ``(url, scheme, host)`` for ``api_url`` or raise ConfigError naming the fix.

    The URL is parsed with ``urllib.parse.urlsplit``, and ``LatitudeClient`` connects to the host and port
    of that parse (``api_target``): the loopback rule applies to the host that is connected to. ``host``
    is in lower case, an IPv6 address in brackets.
    """
    url = (api_url or "").strip()
    example = "for example https://api.latitude.sh (or set LATITUDESH_API_URL)"
    if not re.match(r"(?i)https?://", url):
        raise ConfigError("api_url %r is not an absolute http(s) URL: give the scheme and host, %s."
                          % (_shown_url(url), example))
    if any(_unsafe_url_char(char) for char in url):
        raise ConfigError(
            "api_url %r contains whitespace, a control character or a backslash: write the URL "
            "without them, %s." % ("".join("?" if _unsafe_url_char(c) else c for c in _shown_url(url)), example)
        )
    if "@" in url.split("://", 1)[1].split("/", 1)[0]:
        raise ConfigError(
            "api_url must not contain a user name or password (user:password@host): the API is "
            "authenticated with auth_token only. Remove the part before '@' from api_url."
        )
    invalid = ConfigError("api_url %r is not a valid URL (is the port between 1 and 65535?), %s."
                          % (_shown_url(url), example))
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:  # a port out of range or not a number, unbalanced brackets
        raise invalid
    if not hostname:
        raise ConfigError("api_url %r is not an absolute http(s) URL: give the scheme and host, %s."
                          % (_shown_url(url), example))
    if parts.username is not None or parts.password is not None:  # pragma: no cover - refused above already
        raise ConfigError("api_url must not contain a user name or password.")
    bracketed = parts.netloc.rpartition("]")[0].startswith("[")
    if bracketed and "%" in hostname:
        raise ConfigError("api_url %r has an IPv6 zone index (the part from '%%' in the brackets), which cannot be "
                          "sent in a Host header: remove it." % _shown_url(url))
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError("api_url %r has port %s: give a port between 1 and 65535." % (_shown_url(url), port))
    if parts.netloc.endswith(":") or (port is None and ":" in parts.netloc.rpartition("]")[2]):
        raise invalid
    if bracketed:
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise invalid
        host = "[%s]" % hostname
    elif _HOST_NAME.match(hostname):
        host = hostname
        if _ascii_host(hostname) is None:
            raise ConfigError(
                "api_url %r has a host name that IDNA cannot encode as written (a label too long, or a character "
                "it would change, such as 'ß' or 'Ⅸ', so the request could go to another host): give the host in "
                "its ASCII form (xn--...)." % _shown_url(url))
    else:
        raise invalid
    if "?" in url or "#" in url:
        raise ConfigError("api_url %r must not have a query string or fragment (the part from '?' or '#', not "
                          "quoted here): remove it." % _shown_url(url))
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            "api_url %r uses plain http to a host that is not on this machine: the token would "
            "travel unencrypted. Use https:// (plain http is allowed only for loopback addresses, "
            "such as the bundled sandbox)." % _shown_url(url)
        )
    return url.rstrip("/"), parts.scheme, host


def _ascii_host(hostname):
    """``hostname`` as DNS, TLS and the Host header need it: IDNA for a non-ASCII name, or None when the encoding
    would change the name (IDNA 2003 maps 'ß' to 'ss' and 'Ⅸ' to 'ix', where other clients use IDNA 2008) or fails."""
    try:
        hostname.encode("ascii")
        return hostname
    except UnicodeEncodeError:
        pass
    try:
        encoded = hostname.encode("idna").decode("ascii")
        same = encoded.encode("ascii").decode("idna") == hostname.lower()
    except UnicodeError:
        return None
    return encoded if same else None


def api_target(url):
    """``(scheme, host, port, base path)`` of a URL that check_api_url accepted: where the request goes.

    The host is as check_api_url gave it (an IPv6 address in brackets; a non-ASCII name in IDNA, as
    DNS and the Host header need it); the base path is percent-encoded where it must be.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if ":" not in host:
        host = _ascii_host(host)
    if ":" in host:
        host = "[%s]" % host
    path = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
    return scheme, host, parts.port or (443 if scheme == "https" else 80), path


def validate_api_url(api_url):
    """Return ``api_url`` without a trailing slash, or raise ConfigError naming the fix."""
    return check_api_url(api_url)[0]


def is_loopback(host):
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``), as check_api_url gives them.

    An IPv4 address is read as the name lookup reads it (``inet_aton``): ``127.1`` and ``2130706433`` are
    loopback, ``0127.0.0.1`` is 87.0.0.1 (octal). An IPv4-mapped IPv6 address (``[::ffff:127.0.0.1]``) counts as its
    IPv4 address. A name with a final dot (``localhost.``, ``127.0.0.1.``) is looked up in DNS: not loopback.
    """
    host = (host or "").lower()
    if host == "localhost":
        return True
    try:
        if ":" in host:
            address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
        else:
            address = ipaddress.ip_address(socket.inet_aton(host))
    except (OSError, ValueError):  # not an address (inet_aton raises OSError)
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def check_ca_bundle_variables():
    """Raise ConfigError when the CA bundle variable in use names no file (it would fail each request)."""
    name = ca_bundle_variable()
    if name and not os.path.exists(os.environ[name]):
        raise ConfigError("%s is set to %r, which does not exist: the API's certificate is checked against the CA "
                          "bundle it names. Fix the path, or unset %s to use the default CA bundle."
                          % (name, os.environ[name], name))


def validate_connection(params):
    """Check the connection options before any request; raise ConfigError naming the option."""
    if not (params.get("auth_token") or "").strip():
        raise ConfigError(
            "auth_token is empty: give auth_token or set one of %s." % ", ".join(TOKEN_ENV_VARS)
        )
    token = params["auth_token"].strip()
    if any(not 32 <= ord(char) < 127 for char in token):
        # http.client refuses to send it (a ValueError after connecting); never quoted.
        raise ConfigError(
            "auth_token contains a line break, a control character or a non-ASCII character, which an "
            "HTTP header cannot carry: copy the token again (Latitude.sh tokens are ASCII letters and digits)."
        )
    if params["api_timeout"] <= 0:
        raise ConfigError("api_timeout must be a positive number of seconds, got %s." % params["api_timeout"])
    if params["api_timeout"] > MAX_API_TIMEOUT:
        raise ConfigError("api_timeout must be at most %d seconds (one hour), got %s."
                          % (MAX_API_TIMEOUT, params["api_timeout"]))
    if params["api_retries"] < 0:
        raise ConfigError("api_retries must be 0 or more, got %s." % params["api_retries"])
    return validate_api_url(params["api_url"])


@contextlib.contextmanager
def _sigterm_interrupts():
    """Within the block, SIGTERM raises KeyboardInterrupt (in the main thread only), as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class LatitudeClient(object):
    """One kept-alive connection per module run, with the collection's auth, retry and error rules."""

    def __init__(self, params, sleep=time.sleep, clock=time.monotonic):
        self.base_url = validate_connection(params)
        self.scheme, self.host, self.port, self.base_path = api_target(self.base_url)
        self._token = params["auth_token"].strip()
        self.timeout = params["api_timeout"]
        self.retries = params["api_retries"]
        self.validate_certs = params["validate_certs"]
        if self.scheme == "https" and self.validate_certs:
            check_ca_bundle_variables()
        # The whole task (up to three requests, their retries and waits) ends within this many seconds.
        self.task_budget = (self.retries + 3) * self.timeout
        self._sleep = sleep
        self._clock = clock
        self._task_started = clock()
        self._policy = None
        self._errors = None
        self._conn = None
        self._route = None  # (tls context, proxy) of an https URL, decided at the first connection
        self.headers = {
            # §1: the SDKs send the raw token, without "Bearer ". Set on every request by this code only:
            # neither ~/.netrc nor a proxy setting can replace it, and it never goes to a proxy.
            "Authorization": self._token,
            "Accept": "application/vnd.api+json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
        }

    @staticmethod
    def url_secrets(api_url):
        """What may be a password in ``api_url`` (the part before an ``@``): for the module's no_log values.

        The URL is refused, but the module arguments (``invocation``) are shown at -vvv and given to callbacks.
        """
        userinfo = re.match(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:/*)?(.*)@", (api_url or "").strip(), re.DOTALL)
        if not userinfo:
            return set()
        found = set([userinfo.group(1)])
        found.update(part.partition(":")[2] for part in userinfo.group(1).split("@"))
        return set(value for value in found if len(value) >= 3)

    @property
    def policy(self):
        """The RetryPolicy of this task, loaded at the first retry or failure (it keeps the rate-limit budget)."""
        if self._policy is None:
            from ansible_collections.latitudesh.cloud.plugins.module_utils._api_retry import RetryPolicy
            self._policy = RetryPolicy(self.retries, self.timeout)
        return self._policy

    @property
    def errors(self):
        """The AnswerErrors of this task, loaded when an answer or a failure becomes an error."""
        if self._errors is None:
            from ansible_collections.latitudesh.cloud.plugins.module_utils._api_answers import AnswerErrors
            self._errors = AnswerErrors(self._token, self.timeout, self.retries)
        return self._errors

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

    def _budget_left(self):
        return self.task_budget - (self._clock() - self._task_started)

    def _wait(self, seconds, method, path, maybe_applied):
        """Sleep before a retry, unless the wait would not end within the task's time budget."""
        if seconds >= self._budget_left():
            raise self.errors.budget_error(method, path, self.task_budget, maybe_applied)
        self._sleep(seconds)

    def _send(self, method, path, body, maybe_applied):
        """One attempt, ended by its Deadline after api_timeout s (or what is left of the task's time
        budget, if less); a LatitudeError when it expired."""
        left = self._budget_left()
        if left <= 0:
            raise self.errors.budget_error(method, path, self.task_budget, maybe_applied)
        with Deadline(min(self.timeout, left)) as deadline:
            try:
                return self._exchange(method, path, body, deadline)
            except TransportFailure as failure:
                if deadline.is_over() or isinstance(failure.cause, socket.timeout):
                    sent = failure.sent
                    if deadline.seconds < self.timeout:
                        raise self.errors.budget_error(method, path, self.task_budget,
                                                       maybe_applied or (sent and method != "GET"), final=True)
                    if not sent:  # the name lookup, connect, proxy tunnel or TLS handshake did not end in time
                        raise self.errors.connect_deadline_error(method, path, failure.host or self.host)
                    raise self.errors.deadline_error(method, path, sent)
                raise

    def _exchange(self, method, path, body, deadline):
        """Send one attempt and read its answer whole: the one seam of the transport (unit tests replace it).

        Returns an Answer. Raises TransportFailure(phase, cause) when the network or HTTP failed (the
        phase tells whether the request may have been sent), or a LatitudeError for an answer too large
        to read. A redirect is never followed: it is an answer like any other, which request() refuses.
        """
        payload = None if body is None else json.dumps(body, allow_nan=False).encode("utf-8")
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn = self._conn
        phase = "connect"
        try:
            if conn is None or conn.sock is None or _dropped(conn.sock):
                self._close()
                conn = self._conn = self._connection()
                conn.open(deadline)
            if deadline.is_over():  # connected just as the time ran out: nothing is sent after the deadline
                raise socket.timeout("api_timeout ran out before the request was sent")
            deadline.sock = conn.sock
            conn.sock.settimeout(deadline.left())
            phase = "send"
            conn.request(method, self.base_path + path, body=payload, headers=headers)
            phase = "answer"
            response = conn.getresponse()
            content = self._read_body(method, path, response, deadline)
        except LatitudeError:
            self._close()
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._close()
            raise TransportFailure(conn.phase if phase == "connect" and conn is not None else phase, exc,
                                   conn.host if conn is not None else self.host)
        if deadline.is_over() or response.status < 200:  # the watcher may cut it now; or it switched protocols
            self._close()
        return Answer(response.status, Headers(response.msg.items()), content)

    def _connection(self):
        """A new connection to api_url: plain http (loopback, never proxied), or https, maybe through a proxy."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        if self.scheme == "http":  # a loopback host (check_api_url): never through a proxy, only to a loopback peer
            return _Connection(host, self.port, loopback_only=True)
        if self._route is None:
            try:
                context = tls_context(self.validate_certs)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise TransportFailure("tls-config", exc)
            # A loopback address never goes through a proxy, whatever the scheme: over https with validate_certs=false,
            # a proxy that ends the tunnel itself would read the token.
            self._route = (context, None if is_loopback(self.host) else proxy_for(self.host, self.port))
        context, proxy = self._route
        if proxy is None:
            # A loopback host skips the proxy: the connection must then reach a loopback address, as for plain http.
            return _Connection(host, self.port, context, host, loopback_only=is_loopback(self.host))
        conn = _Connection(proxy[0], proxy[1], context, host, proxied=True)
        conn.set_tunnel(host, self.port, headers=proxy[2])
        return conn

    def _close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_body(self, method, path, response, deadline):
        """The answer's body: at most MAX_ANSWER_BYTES once decoded, else a LatitudeError; a cut one is a failure.

        Accept-Encoding is identity; an answer sent in gzip or deflate all the same is decoded, within the cap.
        """
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        decoder, decode_error = None, ()
        if encoding in ("gzip", "x-gzip", "deflate"):
            import zlib  # only here: an answer the server compressed although asked not to
            decoder, decode_error = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 32)), zlib.error
        chunks, size = [], 0
        try:
            while True:
                data = response.read(65536)
                if not data:
                    break
                while data:
                    piece = data if decoder is None else decoder.decompress(data, MAX_ANSWER_BYTES + 1 - size)
                    data = b"" if decoder is None else decoder.unconsumed_tail
                    size += len(piece)
                    if size > MAX_ANSWER_BYTES:
                        raise self.errors.too_large(method, path, response.status, MAX_ANSWER_BYTES)
                    chunks.append(piece)
        except decode_error:
            raise ValueError("the answer's Content-Encoding %s could not be decoded" % encoding)
        if response.length or deadline.cut:  # ended before its Content-Length, or cut by the deadline
            raise http.client.IncompleteRead(b"", response.length)
        return b"".join(chunks)

    def request(self, method, path, body=None):
        """Send one logical request; return the decoded JSON body ({} when empty).

        An interrupt (Ctrl-C, or SIGTERM, which is turned into one while the request runs) ends it with a
        LatitudeError: a write may have reached the API, and the caller says what to check, as for a lost answer.
        """
        try:
            with _sigterm_interrupts():
                return self._request(method, path, body)
        except KeyboardInterrupt:
            self._close()
            raise self.errors.interrupted(method, path, maybe_applied=method != "GET")

    def _request(self, method, path, body):
        started = time.time()
        attempt = 0
        rate_limited = 0
        maybe_applied = False
        while True:
            try:
                response = self._send(method, path, body, maybe_applied)
            except LatitudeError as failure:  # the deadline expired; timed_out: the request was sent
                maybe_applied = maybe_applied or failure.maybe_applied
                if failure.status is not None or failure.final:  # too large to read, or no time left
                    failure.maybe_applied = maybe_applied
                    raise failure
                wait = self.policy.after_failure(method, attempt, failure.timed_out)
                if wait is not None:
                    self._wait(wait, method, path, maybe_applied)
                    attempt += 1
                    continue
                failure.maybe_applied = maybe_applied
                raise failure
            except TransportFailure as exc:
                sent = exc.sent
                failure = self.errors.transport_error(method, path, exc, self.base_url)
                maybe_applied = maybe_applied or (sent and method != "GET")
                # A refused certificate (or an unusable proxy or CA bundle) stays so: retrying would only add backoff.
                permanent = self.errors.permanent(exc)
                wait = self.policy.after_failure(method, attempt, sent, certificate=permanent)
                if wait is not None:
                    self._wait(wait, method, path, maybe_applied)
                    attempt += 1
                    continue
                failure.maybe_applied = maybe_applied
                raise failure

            status = response.status_code
            if status == 429:
                rate_limited += 1
                wait, refusal = self.policy.after_rate_limit(attempt, response)
                if wait is not None:
                    self._wait(wait, method, path, maybe_applied)
                    attempt += 1
                    continue
                raise self.errors.rate_limit_error(method, path, rate_limited, started, refusal, maybe_applied)
            if status in SERVER_ERRORS:
                maybe_applied = maybe_applied or method != "GET"
                wait = self.policy.after_failure(method, attempt, True)
                if wait is not None:
                    self._wait(wait, method, path, maybe_applied)
                    attempt += 1
                    continue
            if 300 <= status < 400:
                raise self.errors.redirect_error(method, path, response, maybe_applied)
            if status == 404 and method == "DELETE" and maybe_applied:
                # The first DELETE may have been applied before its answer was lost.
                return {}
            if status < 200:  # 101, or another answer that is not final: the request reached the server
                maybe_applied = maybe_applied or method != "GET"
            if status >= 400 or status < 200:
                raise self.errors.http_error(method, path, response, response.text, maybe_applied)
            return self._decode(method, path, response)

    def _decode(self, method, path, response):
        text = response.text
        if not text.strip() and method not in ("POST", "PUT"):
            return {}
        try:
            doc = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
            doc = None
        if not isinstance(doc, dict):
            raise self.errors.unreadable_success(method, path, response, text)
        return doc
