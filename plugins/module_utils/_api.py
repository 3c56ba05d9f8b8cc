# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The only code in this collection that speaks HTTP to the Latitude.sh API.

Private to the collection: the names here may change without notice.
The section numbers in comments (``§N``) refer to the collection's API contract
for ``/auth/api_keys``, summarised in ``docs/api-contract.md``. The rules of the transport
(which URL is accepted, how long a task may take, what is retried, what an error message may
quote) are listed in ``docs/reliability.md``; each has one home here:

- ``check_api_url``: the URL check, made with the parser that sends the request;
- ``Deadline`` and ``LatitudeClient._send``: one attempt, bounded end to end by ``api_timeout``;
- ``RetryPolicy``: what is sent again, how long to wait, and the cap on rate-limit waits;
- ``AnswerErrors``: answers and failures turned into ``LatitudeError`` with masked messages.

Only what every run needs is imported at module load: ``email.utils`` (an HTTP-date
``Retry-After``), ``random`` (a backoff) and ``ssl`` (a refused certificate) are imported where
they are used.
"""

import ipaddress
import json
import re
import socket
import threading
import time

from ansible.module_utils.basic import env_fallback, missing_required_lib

# The modules import the errors from here, beside the client that raises them.
from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import ConfigError, LatitudeError

try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.exceptions import ConnectionError as _ConnectionError
    from requests.exceptions import ConnectTimeout, ReadTimeout, RequestException, SSLError
    from urllib3.exceptions import LocationParseError, NewConnectionError
    from urllib3.util import parse_url

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc
    HTTPAdapter = object

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
# The longest single wait the API may ask for that we honour (the documented limit window is 60 s).
MAX_ADVISED_WAIT = 120.0
MASK = "********"


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
    """``url`` fit to quote in a message: anything that may be a user name or password removed."""
    return re.sub(r"//[^/?#]*@", "//", url)


def check_api_url(api_url):
    """Return ``(url, scheme, host)`` for ``api_url`` or raise ConfigError naming the fix.

    The URL is parsed with ``urllib3.util.parse_url``, the parser that ``requests`` and urllib3
    use to send the request, so the loopback rule applies to the host that is connected to.
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
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise ConfigError("api_url %r is not a valid URL (is the port between 1 and 65535?), %s."
                          % (_shown_url(url), example))
    if not parts.host:
        raise ConfigError("api_url %r is not an absolute http(s) URL: give the scheme and host, %s."
                          % (url, example))
    if parts.auth is not None:  # pragma: no cover - refused above already; kept as a second check
        raise ConfigError("api_url must not contain a user name or password.")
    if parts.port is not None and not 1 <= parts.port <= 65535:
        raise ConfigError("api_url %r has port %s: give a port between 1 and 65535." % (url, parts.port))
    if parts.query is not None or parts.fragment is not None:
        raise ConfigError("api_url %r must not have a query string or fragment." % url)
    if parts.scheme == "http" and not is_loopback(parts.host):
        raise ConfigError(
            "api_url %r uses plain http to a host that is not on this machine: the token would "
            "travel unencrypted. Use https:// (plain http is allowed only for loopback addresses, "
            "such as the bundled sandbox)." % url
        )
    return url.rstrip("/"), parts.scheme, parts.host


def validate_api_url(api_url):
    """Return ``api_url`` without a trailing slash, or raise ConfigError naming the fix."""
    if not HAS_REQUESTS:
        raise ConfigError(missing_required_lib("requests"))
    return check_api_url(api_url)[0]


def is_loopback(host):
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``), as parse_url gives them."""
    host = (host or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host[1:-1] if host.startswith("[") else host).is_loopback
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


# --------------------------------------------------------------------------
# Answers to messages: what may be quoted, and masked how
# --------------------------------------------------------------------------

# A value under a key named ``token``, in any quoting or escaping: "token": "…", \"token\":\"…\",
# 'token': '…', &quot;token&quot;:&quot;…, \u0022token\u0022: …, token=…, token: ….
_QUOTE = r"""(?:\\*["']|&quot;|&#0*3[49];|&#[xX]0*2[27];|\\+u002[27])"""
_TOKEN_FIELD = re.compile(
    r"(?i)(\btoken%s?\s*[:=]\s*%s?)([^\s\"'\\&<>,;}\])]+)" % (_QUOTE, _QUOTE)
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")


def mask_secrets(text, secret=None):
    """``text`` with the admin token, every value of a ``token`` key and any 32+ hex run masked."""
    text = text or ""
    if secret:
        text = text.replace(secret, MASK)
    text = _TOKEN_FIELD.sub(lambda match: match.group(1) + MASK, text)
    return _HEX_RUN.sub(MASK, text)


def error_detail(body_text, content_type="", quote=True):
    """Turn an error body into one short line: JSON:API ``errors[]`` first (§5), else a snippet.

    With ``quote=False`` (the answer to a POST or PUT, which may carry a token) no part of the
    body outside ``errors[]`` is quoted.
    """
    try:
        doc = json.loads(body_text)
    except ValueError:
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


def _sent(exc):
    """False only when the request certainly never left this machine (a connect-phase error)."""
    if isinstance(exc, ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(exc, SSLError):
        import ssl  # only here: a refused certificate
        if any(isinstance(arg, ssl.SSLCertVerificationError) for arg in getattr(reason, "args", ())):
            return False  # the certificate was refused during the handshake: nothing was sent
    return not isinstance(reason, NewConnectionError)


class AnswerErrors(object):
    """Turns failed answers and transport failures into LatitudeError; every message is masked."""

    def __init__(self, secret, timeout, retries):
        self.secret = secret
        self.timeout = timeout
        self.retries = retries

    def mask(self, text):
        return mask_secrets(text, self.secret)

    def http_error(self, method, path, response, maybe_applied):
        status = response.status_code
        text = self.mask(_body_text(response))
        detail = error_detail(text, response.headers.get("Content-Type", ""), quote=method not in ("POST", "PUT"))
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
            message += ". The API kept failing after %s attempt(s)" % (
                self.retries + 1 if method in RETRY_ON_SERVER_ERROR else 1)
            if maybe_applied:
                message += "; the request may have been applied"
        return LatitudeError(
            message, method, path, status, maybe_applied=maybe_applied, pointer=_first_pointer(text)
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
        except ValueError:
            return LatitudeError(
                "%s %s returned HTTP %s with a body that is not valid JSON (%s)%s."
                % (method, path, response.status_code,
                   _snippet(self.mask(text), quote=method not in ("POST", "PUT")),
                   "; the change may have been applied" if written else ""),
                method, path, response.status_code, maybe_applied=written,
            )
        return LatitudeError(
            "%s %s returned HTTP %s with an unexpected JSON document (not an object)."
            % (method, path, response.status_code),
            method, path, response.status_code, maybe_applied=written,
        )

    def transport_error(self, method, path, exc, sent, base_url):
        if isinstance(exc, SSLError):
            what = ("TLS verification failed (%s); fix the certificate or set validate_certs=false for a "
                    "test endpoint" % type(exc).__name__)
        elif isinstance(exc, (ConnectTimeout, ReadTimeout)):
            what = "no answer within api_timeout=%s s" % self.timeout
        elif isinstance(exc, _ConnectionError) and not sent:
            what = "could not connect to %s" % base_url
        else:
            what = "the connection failed before an answer arrived (%s)" % type(exc).__name__
        return self._transport(method, path, what, sent, timed_out=isinstance(exc, ReadTimeout))

    def deadline_error(self, method, path, sent):
        what = ("no complete answer within api_timeout=%s s (api_timeout bounds each request from "
                "connecting to the last byte of the answer; the answer was cut off)" % self.timeout)
        return self._transport(method, path, what, sent, timed_out=sent)

    def _transport(self, method, path, what, sent, timed_out):
        message = "Latitude API request %s %s failed: %s" % (method, path, what)
        if sent and method in ("POST", "PUT", "PATCH", "DELETE"):
            message += "; the request may have been applied"
        return LatitudeError(message, method, path, None, maybe_applied=sent and method != "GET",
                             timed_out=timed_out)


# --------------------------------------------------------------------------
# The retry policy: what is sent again, how long to wait, the cap on rate-limit waits
# --------------------------------------------------------------------------

def _wait_value(value):
    """``value`` as seconds to wait, or None when it is not a finite number >= 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds < float("inf") else None  # NaN compares false


def advised_wait(response):
    """Seconds the API asks us to wait: ``Retry-After`` first, then ``errors[].meta.retry_after`` (§5, §10.7).

    None when neither gives a usable value (negative, NaN, infinite or unparsable): the caller
    then backs off instead.
    """
    header = (response.headers.get("Retry-After") or "").strip()
    if header:
        seconds = _wait_value(header)
        if seconds is None and header[:3].isalpha() and header[:3].lower() not in ("nan", "inf"):
            import email.utils  # only here: an HTTP-date Retry-After
            parsed = email.utils.parsedate_tz(header)
            if parsed:
                seconds = max(0.0, email.utils.mktime_tz(parsed) - time.time())
        if seconds is not None:
            return seconds
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    for err in errors if isinstance(errors, list) else []:
        meta = err.get("meta") if isinstance(err, dict) else None
        value = meta.get("retry_after") if isinstance(meta, dict) else None
        if value is not None and not isinstance(value, bool):
            seconds = _wait_value(value)
            if seconds is not None:
                return seconds
    return None


def backoff(attempt, rand=None):
    """Jittered exponential backoff: between half and all of min(cap, base * 2**attempt)."""
    if rand is None:
        import random  # only here: a backoff
        rand = random.random
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    return ceiling * (0.5 + rand() / 2)


class RetryPolicy(object):
    """Decides whether an attempt is sent again and how long to wait first.

    - 429: every method, after the advised wait (else the backoff); one wait at most
      ``MAX_ADVISED_WAIT`` s, and all the 429 waits of the task (of this client) together at most
      ``rate_limit_budget`` = ``api_retries * api_timeout / 2`` s.
    - 5xx, dropped connection, deadline: only GET, PATCH and DELETE (a POST or PUT may have been
      applied), after the backoff; a connect-phase failure (nothing sent): every method.
    - a refused certificate: never.
    Every request gets at most ``api_retries`` retries.
    """

    def __init__(self, retries, timeout):
        self.retries = retries
        self.rate_limit_budget = retries * timeout / 2.0
        self.rate_limit_waited = 0.0

    def after_failure(self, method, attempt, sent, certificate=False):
        """Seconds to wait before sending again after a 5xx or a transport failure, or None."""
        if attempt >= self.retries or certificate or (sent and method not in RETRY_ON_SERVER_ERROR):
            return None
        return backoff(attempt)

    def after_rate_limit(self, attempt, advised):
        """``(seconds to wait, None)``, or ``(None, why not)`` for a 429."""
        if attempt >= self.retries:
            return None, " after api_retries=%s retries" % self.retries
        wait = backoff(attempt) if advised is None else advised
        if wait > MAX_ADVISED_WAIT:
            return None, ": the API asked to wait %.0f s, more than the %.0f s this module waits" % (
                wait, MAX_ADVISED_WAIT)
        left = self.rate_limit_budget - self.rate_limit_waited
        if wait > left:
            return None, (
                ": %s %.0f s, more than the %.1f s left of the %.1f s that a task waits for rate limits "
                "in all (api_retries x api_timeout / 2)"
                % ("the API asked to wait" if advised is not None else "the backoff would wait", wait,
                   max(left, 0.0), self.rate_limit_budget)
            )
        self.rate_limit_waited += wait
        return wait, None


# --------------------------------------------------------------------------
# Sending with a deadline
# --------------------------------------------------------------------------

class Deadline(object):
    """Ends one attempt ``seconds`` after it started, in whatever phase it is.

    ``requests``' timeout bounds each read from the socket, not the whole answer: a server that
    sends a byte now and then keeps a request open for ever. A watcher thread shuts the socket of
    the attempt down when the time is up, which makes the blocked read return at once.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.conn = None  # the urllib3 connection of the attempt, set by the adapter
        self.expired = False
        self.cut = False  # a socket was shut down: the request may have been sent
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="latitudesh-deadline")
        self._watcher.daemon = True

    def __enter__(self):
        self._watcher.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        return False

    def _watch(self):
        if self._done.wait(self.seconds):
            return
        self.expired = True
        cut = None
        while not self._done.is_set():
            sock = getattr(self.conn, "sock", None)
            sock = getattr(sock, "socket", sock)  # urllib3's SSLTransport wraps the socket (TLS in TLS)
            if sock is not None and sock is not cut:
                cut = sock
                self.cut = True
                try:
                    # The plain socket's shutdown, not SSLSocket's (which would unwrap the TLS object
                    # under the reading thread): the blocked read returns at once.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except (OSError, TypeError, ValueError):
                    pass
            self._done.wait(0.05)


class _DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter that tells the current Deadline which connection its attempt uses."""

    deadline = None

    def init_poolmanager(self, *args, **kwargs):
        super(_DeadlineAdapter, self).init_poolmanager(*args, **kwargs)
        self._watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super(_DeadlineAdapter, self).proxy_manager_for(proxy, **proxy_kwargs)
        self._watch_pools(manager)
        return manager

    def _watch_pools(self, manager):
        if getattr(manager, "_latitudesh_watched", False):
            return
        adapter = self

        def watched(pool_cls):
            def _get_conn(pool, timeout=None):
                conn = pool_cls._get_conn(pool, timeout)
                if adapter.deadline is not None:
                    adapter.deadline.conn = conn
                return conn
            return type("Deadline" + pool_cls.__name__, (pool_cls,), {"_get_conn": _get_conn})

        manager.pool_classes_by_scheme = dict(
            (scheme, watched(pool_cls)) for scheme, pool_cls in manager.pool_classes_by_scheme.items()
        )
        manager._latitudesh_watched = True


class LatitudeClient(object):
    """One ``requests.Session`` per module run, with the collection's auth, retry and error rules."""

    def __init__(self, params, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise ConfigError(missing_required_lib("requests"))
        self.base_url = validate_connection(params)
        scheme, host = check_api_url(self.base_url)[1:]
        self._token = params["auth_token"].strip()
        self.timeout = params["api_timeout"]
        self.retries = params["api_retries"]
        self._sleep = sleep
        self.policy = RetryPolicy(self.retries, self.timeout)
        self.errors = AnswerErrors(self._token, self.timeout, self.retries)
        self.session = requests.Session()
        # A plain-http URL is a loopback address: never send it (and the token) through a proxy.
        # https keeps the proxy variables (HTTPS_PROXY, NO_PROXY) and REQUESTS_CA_BUNDLE.
        self.session.trust_env = scheme != "http" or not is_loopback(host)
        self.session.verify = params["validate_certs"]
        self._adapter = _DeadlineAdapter()
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        self.session.headers.update({
            # §1: the SDKs send the raw token, without "Bearer ".
            "Authorization": self._token,
            "Accept": "application/vnd.api+json",
            "User-Agent": USER_AGENT,
        })

    def _auth(self, prepared):
        # Set on every request, so that neither ~/.netrc nor a proxy setting replaces the token.
        prepared.headers["Authorization"] = self._token
        return prepared

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

    def _send(self, method, path, body):
        """One attempt, ended by its Deadline after api_timeout s; a LatitudeError when it expired."""
        with Deadline(self.timeout) as deadline:
            self._adapter.deadline = deadline
            try:
                return self.session.request(
                    # verify per request: requests lets REQUESTS_CA_BUNDLE override the session's.
                    method, self.base_url + path, json=body, timeout=self.timeout, verify=self.session.verify,
                    auth=self._auth,
                )
            except (RequestException, OSError, ValueError):
                if deadline.expired:
                    raise self.errors.deadline_error(method, path, deadline.cut)
                raise
            finally:
                self._adapter.deadline = None

    def request(self, method, path, body=None):
        """Send one logical request; return the decoded JSON body ({} when empty)."""
        started = time.time()
        attempt = 0
        rate_limited = 0
        maybe_applied = False
        while True:
            try:
                response = self._send(method, path, body)
            except LatitudeError as failure:  # the deadline expired; timed_out: the request was sent
                maybe_applied = maybe_applied or failure.maybe_applied
                wait = self.policy.after_failure(method, attempt, failure.timed_out)
                if wait is not None:
                    self._sleep(wait)
                    attempt += 1
                    continue
                failure.maybe_applied = maybe_applied
                raise failure
            except RequestException as exc:
                sent = _sent(exc)
                failure = self.errors.transport_error(method, path, exc, sent, self.base_url)
                maybe_applied = maybe_applied or (sent and method != "GET")
                # A refused certificate stays refused: retrying it would only add backoff.
                wait = self.policy.after_failure(method, attempt, sent, certificate=isinstance(exc, SSLError))
                if wait is not None:
                    self._sleep(wait)
                    attempt += 1
                    continue
                failure.maybe_applied = maybe_applied
                raise failure

            status = response.status_code
            if status == 429:
                rate_limited += 1
                wait, refusal = self.policy.after_rate_limit(attempt, advised_wait(response))
                if wait is not None:
                    self._sleep(wait)
                    attempt += 1
                    continue
                raise self.errors.rate_limit_error(method, path, rate_limited, started, refusal, maybe_applied)
            if status in SERVER_ERRORS:
                maybe_applied = maybe_applied or method != "GET"
                wait = self.policy.after_failure(method, attempt, True)
                if wait is not None:
                    self._sleep(wait)
                    attempt += 1
                    continue
            if status == 404 and method == "DELETE" and maybe_applied:
                # The first DELETE may have been applied before its answer was lost.
                return {}
            if status >= 400:
                raise self.errors.http_error(method, path, response, maybe_applied)
            return self._decode(method, path, response)

    def _decode(self, method, path, response):
        text = _body_text(response)
        if not text.strip() and method not in ("POST", "PUT"):
            return {}
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise self.errors.unreadable_success(method, path, response, text)
        return doc
