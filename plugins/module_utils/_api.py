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
- ``Deadline`` and ``LatitudeClient._send`` (here): one attempt, bounded end to end by ``api_timeout``,
  its answer read up to ``MAX_ANSWER_BYTES``, a redirect never followed;
- ``_api_retry.RetryPolicy``: what is sent again, how long to wait, and the cap on rate-limit waits;
- ``_api_answers.AnswerErrors``: answers and failures turned into ``LatitudeError`` with masked messages.

Only what every run needs is loaded at start-up: ``_api_retry`` and ``_api_answers`` (and with them
``email.utils``, ``random`` and ``ssl``) are imported the first time a request is retried or fails.
"""

import ipaddress
import json
import os
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
    from requests.exceptions import RequestException, SSLError
    from urllib3.exceptions import ConnectTimeoutError, LocationParseError
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
    """``url`` fit to quote in a message: anything that may be a user name or password removed."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:/*)?[^?#]*@", lambda match: match.group(1) or "", url)


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
    if parts.host.startswith("[") and "%" in parts.host:
        raise ConfigError("api_url %r has an IPv6 zone index (the part from '%%' in the brackets), which requests "
                          "cannot send: remove it." % _shown_url(url))
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


def ca_bundle_variable():
    """The CA bundle variable requests reads for https (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE), or None."""
    return next((name for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(name)), None)


def check_ca_bundle_variables():
    """Raise ConfigError when the CA bundle variable that requests reads names no file (it would fail each request)."""
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
        # http.client cannot send it (a traceback) or requests refuses it after connecting; never quoted.
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


# --------------------------------------------------------------------------
# Sending with a deadline
# --------------------------------------------------------------------------

class Deadline(object):
    """Ends one attempt ``seconds`` after it started, in whatever phase it is.

    ``requests``' timeout bounds each read from the socket, not the whole answer: a server that
    sends a byte now and then keeps a request open for ever. A watcher thread shuts the socket of
    the attempt down when the time is up, which makes the blocked read return at once. Before there
    is a socket (the name lookup, the connect), ``connect`` stops waiting instead.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.conn = None  # the urllib3 connection of the attempt, set by the adapter
        self.expired = False
        self.cut = False  # a socket was shut down: the request may have been sent
        self.host = None  # what connect() connects to: the API's host, or the proxy's
        self.abandoned = False  # the lookup or connect outlived the deadline (and is left to end alone)
        self._ends = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="latitudesh-deadline")
        self._watcher.daemon = True

    def __enter__(self):
        self._ends = time.monotonic() + self.seconds
        self._watcher.start()
        return self

    def connect(self, new_conn):
        """Return ``new_conn()`` (name lookup, then connect) if it ends before the deadline.

        Neither can be interrupted, so a helper thread runs them while the attempt waits at most what
        is left. Past the deadline the helper is abandoned: a socket it makes later is closed unused,
        so the request is never sent on it.
        """
        made = []
        finished = threading.Event()

        def run():
            try:
                sock = new_conn()
            except Exception as exc:  # handed to the attempt, raised there
                made.append(exc)
            else:
                with self._lock:
                    if self.abandoned:
                        sock.close()
                    else:
                        made.append(sock)
            finished.set()

        helper = threading.Thread(target=run, name="latitudesh-connect")
        helper.daemon = True
        helper.start()
        finished.wait(max(0.0, self._ends - time.monotonic()))
        with self._lock:
            if not made:
                self.abandoned = self.expired = True
                raise ConnectTimeoutError(None, "could not connect to %s within the deadline" % self.host)
        if isinstance(made[0], Exception):
            raise made[0]
        return made[0]

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
    loopback_only = False  # plain http: every connection must reach a loopback address

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
                conn._latitudesh_deadline = adapter.deadline
                conn._latitudesh_loopback_only = adapter.loopback_only
                if adapter.deadline is not None:
                    adapter.deadline.conn = conn
                if "_new_conn" not in vars(conn):
                    _bound(conn)
                return conn
            return type("Deadline" + pool_cls.__name__, (pool_cls,), {"_get_conn": _get_conn})

        manager.pool_classes_by_scheme = dict(
            (scheme, watched(pool_cls)) for scheme, pool_cls in manager.pool_classes_by_scheme.items()
        )
        manager._latitudesh_watched = True


def _bound(conn):
    """Bound the name lookup and connect of urllib3's ``conn`` (its ``_new_conn``) by the Deadline of the attempt
    that uses it, and check where plain http connected to.

    A cut later in ``conn.connect()`` (proxy tunnel, TLS handshake) still counts as maybe sent: during the
    handshake urllib3 holds the plain socket, which the watcher cannot always shut down, so the handshake may
    end late and the request go out after the deadline.
    """
    new_conn = conn._new_conn

    def bounded_new_conn():
        deadline = conn._latitudesh_deadline
        if deadline is None:
            sock = new_conn()
        else:
            deadline.host = conn.host  # the API's host, or the proxy's
            sock = deadline.connect(new_conn)
        if conn._latitudesh_loopback_only:
            _check_loopback_peer(sock, conn.host)
        return sock

    conn._new_conn = bounded_new_conn


def _check_loopback_peer(sock, host):
    """Plain http goes only to this machine: ``host`` (``localhost``) must have resolved to a loopback address too."""
    try:
        peer = sock.getpeername()[0]
        address = ipaddress.ip_address(peer.split("%")[0])
        loopback = (getattr(address, "ipv4_mapped", None) or address).is_loopback
    except (OSError, ValueError):
        peer, loopback = "an unknown address", False
    if not loopback:
        sock.close()
        raise ConfigError(
            "api_url's host %s resolved to %s, which is not a loopback address: plain http goes only to this "
            "machine (the token would travel unencrypted). Nothing was sent: use https://, or fix how %s resolves "
            "(/etc/hosts)." % (host, peer, host), final=True)


def _body_text(response):
    """The response body as text, decoded as UTF-8 when the answer names no charset.

    §1: the API sends ``application/vnd.api+json; charset=utf-8``; should a charset be missing (a
    proxy, another version), JSON is UTF-8 anyway (RFC 8259), and requests would otherwise guess one
    from the bytes: slow on a long list, and a short body can be guessed wrong.
    """
    if response.encoding is None:
        response.encoding = "utf-8"
    return response.text


class LatitudeClient(object):
    """One ``requests.Session`` per module run, with the collection's auth, retry and error rules."""

    def __init__(self, params, sleep=time.sleep, clock=time.monotonic):
        if not HAS_REQUESTS:
            raise ConfigError(missing_required_lib("requests"))
        self.base_url = validate_connection(params)
        scheme, host = check_api_url(self.base_url)[1:]
        self._token = params["auth_token"].strip()
        self.timeout = params["api_timeout"]
        self.retries = params["api_retries"]
        # The whole task (up to three requests, their retries and waits) ends within this many seconds.
        self.task_budget = (self.retries + 3) * self.timeout
        self._sleep = sleep
        self._clock = clock
        self._task_started = clock()
        self._policy = None
        self._errors = None
        self.session = requests.Session()
        # A loopback address never goes through a proxy, whatever the scheme: over https with validate_certs=false,
        # a proxy that ends the tunnel itself would read the token. None overrides the proxy variables (and
        # NO_PROXY); other hosts keep them, and every URL keeps REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE.
        self._proxies = dict.fromkeys(("http", "https", "all"), None) if is_loopback(host) else None
        self.session.verify = params["validate_certs"]
        if scheme == "https" and self.session.verify:
            check_ca_bundle_variables()
        self._adapter = _DeadlineAdapter()
        self._adapter.loopback_only = scheme == "http"
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        self.session.headers.update({
            # §1: the SDKs send the raw token, without "Bearer ".
            "Authorization": self._token,
            "Accept": "application/vnd.api+json",
            "User-Agent": USER_AGENT,
        })

    @staticmethod
    def url_secrets(api_url):
        """What may be a password in ``api_url`` (the part before an ``@``): for the module's no_log values.

        The URL is refused, but the module arguments (``invocation``) are shown at -vvv and given to callbacks.
        """
        userinfo = re.match(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:/*)?([^?#]*)@", (api_url or "").strip())
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
            self._adapter.deadline = deadline
            try:
                response = self.session.request(
                    # verify per request: requests lets REQUESTS_CA_BUNDLE override the session's. Each connect
                    # try gets only what is left (and Deadline.connect stops waiting at the deadline).
                    method, self.base_url + path, json=body, verify=self.session.verify, proxies=self._proxies,
                    timeout=self.timeout if left >= self.timeout else (left, self.timeout),
                    # A redirect is never followed: it would send a create or rotate twice, or the request
                    # (after a 307/308 with its body) where api_url does not point. request() refuses it.
                    auth=self._auth, allow_redirects=False, stream=True,
                )
                self._read_body(method, path, response)
                return response
            except (RequestException, OSError, ValueError):
                # The deadline ended the attempt only if it cut a socket or gave up a connect. A failure of the
                # attempt's own that comes as the time runs out (a dropped connection) says itself what was sent.
                if (deadline.cut or deadline.abandoned) and deadline.seconds < self.timeout:
                    raise self.errors.budget_error(method, path, self.task_budget,
                                                   maybe_applied or (deadline.cut and method != "GET"), final=True)
                if deadline.abandoned:
                    raise self.errors.connect_deadline_error(method, path, deadline.host)
                if deadline.cut:
                    raise self.errors.deadline_error(method, path, True)
                raise
            finally:
                self._adapter.deadline = None

    def _read_body(self, method, path, response):
        """Read the answer into ``response.content``; at most MAX_ANSWER_BYTES once decoded, else a LatitudeError."""
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise self.errors.too_large(method, path, response.status_code, MAX_ANSWER_BYTES)
                chunks.append(chunk)
        finally:
            response.close()  # a complete answer leaves its connection in the pool; a cut one closes it
        response._content = b"".join(chunks)

    def request(self, method, path, body=None):
        """Send one logical request; return the decoded JSON body ({} when empty)."""
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
            except RequestException as exc:
                sent = self.errors.sent_before_failure(exc)
                failure = self.errors.transport_error(method, path, exc, sent, self.base_url)
                maybe_applied = maybe_applied or (sent and method != "GET")
                # A refused certificate (or an unusable proxy scheme) stays so: retrying would only add backoff.
                permanent = isinstance(exc, SSLError) or self.errors.unusable_proxy(exc)
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
            if status >= 400:
                raise self.errors.http_error(method, path, response, _body_text(response), maybe_applied)
            return self._decode(method, path, response)

    def _decode(self, method, path, response):
        text = _body_text(response)
        if not text.strip() and method not in ("POST", "PUT"):
            return {}
        try:
            doc = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
            doc = None
        if not isinstance(doc, dict):
            raise self.errors.unreadable_success(method, path, response, text)
        return doc
