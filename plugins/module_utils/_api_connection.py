# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One attempt over the standard library's ``http.client``: the connection, its proxy tunnel and TLS, and the
deadline that bounds it end to end. Used by ``_api.LatitudeClient`` (its ``_exchange`` is the seam); ``_api_answers``
takes ``ca_bundle_variable`` from here to name the CA bundle in a TLS failure.

Private to the collection: the names here may change without notice. The rules these implement are listed in
``docs/reliability.md`` (transport): where the token goes (``proxy_for``, ``tls_context``,
``_check_loopback_peer``), how long an attempt may take (``Deadline``, ``_resolve``, ``_Connection.open``) and
what counts as sent (``TransportFailure.phase``). Imports nothing of the collection but its errors.
"""

import http.client
import ipaddress
import json
import os
import re
import socket
import threading
import time
from urllib.parse import unquote, urlsplit

from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import ConfigError


def ca_bundle_variable():
    """The CA bundle variable in use for https (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE), or None."""
    return next((name for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(name)), None)


# --------------------------------------------------------------------------
# Answers and failures of one attempt
# --------------------------------------------------------------------------

class Headers(dict):
    """Answer headers by lower-case name; ``get`` and ``[]`` take any letter case. Repeated headers are joined."""

    def __init__(self, items=()):
        super(Headers, self).__init__()
        for name, value in (items.items() if isinstance(items, dict) else items):
            key = name.lower()
            self[key] = "%s, %s" % (self[key], value) if key in self else value

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Answer(object):
    """One answer, read whole: ``status_code``, ``headers`` (a Headers) and ``content`` (bytes, decoded from gzip)."""

    def __init__(self, status_code, headers=(), content=b""):
        self.status_code = status_code
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.content = content
        self._text = None

    @property
    def text(self):
        """The body as text in the charset of Content-Type, else UTF-8.

        §1: the API sends ``application/vnd.api+json; charset=utf-8``; should a charset be missing (a
        proxy, another version), JSON is UTF-8 anyway (RFC 8259). Bytes the charset cannot decode become U+FFFD.
        """
        if self._text is None:
            found = re.search(r"""(?i)charset\s*=\s*["']?([\w.:-]+)""", self.headers.get("Content-Type") or "")
            try:
                self._text = self.content.decode(found.group(1) if found else "utf-8", "replace")
            except (LookupError, UnicodeError):  # a charset Python does not know, or one that is no text codec
                self._text = self.content.decode("utf-8", "replace")
        return self._text

    def json(self):
        return json.loads(self.text)


class TransportFailure(Exception):
    """One attempt failed in the network or in HTTP; ``phase`` says how far it got, ``cause`` is the exception.

    Phases: ``proxy-config`` (a proxy variable names a proxy that cannot be used), ``tls-config`` (the CA
    bundle cannot be loaded), ``resolve``, ``connect``, ``proxy`` (connecting to the proxy, or its
    CONNECT tunnel), ``tls`` (the handshake): in these nothing was sent. ``send`` and ``answer``: the
    request may have reached the API.
    """

    NOT_SENT = frozenset(["proxy-config", "tls-config", "resolve", "connect", "proxy", "tls"])

    def __init__(self, phase, cause, host=None):
        super(TransportFailure, self).__init__("%s: %s" % (phase, type(cause).__name__))
        self.phase = phase
        self.cause = cause
        self.host = host  # the host connected to: the API's, or the proxy's

    @property
    def sent(self):
        return self.phase not in self.NOT_SENT


# --------------------------------------------------------------------------
# Proxies and TLS (https only)
# --------------------------------------------------------------------------

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def _no_proxy_network(host, no_proxy):
    """True when ``host`` is an IP address inside a CIDR entry of NO_PROXY (as requests reads it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in (no_proxy or "").replace(" ", "").split(","):
        if "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def proxy_for(host, port):
    """``(proxy host, proxy port, headers of the CONNECT)`` for an https request to ``host``, or None.

    As requests reads the environment: HTTPS_PROXY, else ALL_PROXY (the lower-case names too), unless
    NO_PROXY names the host. Only an http:// proxy can be used (a CONNECT tunnel, inside which the TLS
    session and the Authorization header go); another scheme raises TransportFailure("proxy-config").
    The proxy URL is never quoted: it may hold a password.
    """
    if not any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    import urllib.request  # only here: a proxy variable is set
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get("https") or proxies.get("all")
    if not proxy:
        return None
    bare = host[1:-1] if host.startswith("[") else host
    if urllib.request.proxy_bypass_environment("%s:%s" % (bare, port), proxies) or \
            urllib.request.proxy_bypass_environment(bare, proxies) or _no_proxy_network(bare, proxies.get("no")):
        return None
    variable = next((name for name in PROXY_VARIABLES if os.environ.get(name) == proxy), "HTTPS_PROXY")
    text = proxy if "://" in proxy else "http://" + proxy
    try:
        parts = urlsplit(text)
        proxy_host, proxy_port = parts.hostname, parts.port or 80
    except ValueError:
        proxy_host = proxy_port = None
    scheme = text.split("://", 1)[0].lower()
    if scheme != "http" or not proxy_host:
        # Only a plain scheme is quoted: "socks5:password@host://x" must not show its password.
        valid = re.match(r"^[a-z][a-z0-9+.-]*$", scheme) is not None
        kind = "a SOCKS proxy (%s://)" % scheme if valid and scheme.startswith("socks") else (
            "an %s:// proxy" % scheme if valid and scheme == "https" else "a proxy that is not a valid http:// URL")
        raise TransportFailure("proxy-config", ValueError(
            "the proxy variable %s names %s, which this collection cannot use: it reaches the API through an "
            "http:// proxy only (a CONNECT tunnel, the TLS session inside it). Set %s to an http:// proxy "
            "(http://host:port), or name the API's host in NO_PROXY" % (variable, kind, variable)))
    headers = {}
    if parts.username is not None:
        import base64  # only here: a proxy with a user name
        credentials = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        try:
            raw = credentials.encode("latin-1")
        except UnicodeEncodeError:
            raw = credentials.encode("utf-8")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
    return proxy_host, proxy_port, headers


def tls_context(validate_certs):
    """The TLS context of an https URL.

    ``validate_certs=true``: the CA bundle named by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (a file or a
    directory, as requests reads them), else certifi's when certifi is installed, else the system's.
    ``validate_certs=false``: no verification at all; it wins over those variables.
    """
    import ssl  # only here: an https URL
    if not validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        name = ca_bundle_variable()
        bundle = os.environ[name] if name else None
        if not bundle:
            try:
                import certifi
                bundle = certifi.where()
            except ImportError:
                bundle = None
        if bundle and os.path.isdir(bundle):
            context = ssl.create_default_context(capath=bundle)
        else:
            context = ssl.create_default_context(cafile=bundle)
    # TLS 1.2 at least, as urllib3 2 (Python 3.8 and 3.9 would otherwise still offer 1.0 and 1.1).
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --------------------------------------------------------------------------
# Sending with a deadline
# --------------------------------------------------------------------------

class Deadline(object):
    """Ends one attempt ``seconds`` after it started, in whatever phase it is.

    A socket timeout bounds each read, not the whole answer: a server that sends a byte now and
    then keeps a request open for ever. A watcher thread shuts the socket of the attempt
    (``self.sock``, set by the client as each phase opens one) down when the time is up, which makes
    the blocked read return at once. Connecting (the DNS lookup included) is bounded by ``left()``.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.sock = None  # the socket of the attempt, set by the client
        self.expired = False
        self.cut = False  # a socket was shut down
        self._ends = time.monotonic() + seconds
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="latitudesh-deadline")
        self._watcher.daemon = True

    def __enter__(self):
        self._ends = time.monotonic() + self.seconds
        self._watcher.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        return False

    def left(self):
        """Seconds left (at least a millisecond, for a socket timeout; is_over() says when none are)."""
        return max(self._ends - time.monotonic(), 0.001)

    def is_over(self):
        return self.expired or time.monotonic() >= self._ends

    def _watch(self):
        if self._done.wait(self.seconds):
            return
        self.expired = True
        cut = None
        while not self._done.is_set():
            sock = self.sock
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


def _resolve(host, port, deadline):
    """``socket.getaddrinfo`` within what is left of ``deadline``: a name is looked up in a daemon thread."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # an address: nothing to look up
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    found = []

    def lookup():
        try:
            found.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as exc:  # handed to the sending thread
            found.append(exc)

    thread = threading.Thread(target=lookup, name="latitudesh-dns")
    thread.daemon = True
    thread.start()
    thread.join(deadline.left())
    if not found:
        raise socket.timeout("the DNS lookup did not end within api_timeout")
    if isinstance(found[0], BaseException):
        raise found[0]
    return found[0]


class _Response(http.client.HTTPResponse):
    """An answer whose interim answers (102 Processing, 103 Early Hints) are skipped, as http.client skips 100 Continue:
    the final answer follows them. 101 is final (and refused by the client as an unexpected answer)."""

    def _read_status(self):
        while True:
            version, status, reason = http.client.HTTPResponse._read_status(self)
            if not 101 < status < 200:
                return version, status, reason
            for _count in range(http.client._MAXHEADERS + 1):  # its header lines, up to the empty one
                line = self.fp.readline(http.client._MAXLINE + 1)
                if len(line) > http.client._MAXLINE:
                    raise http.client.LineTooLong("header line")
                if line in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("got more than %d headers" % http.client._MAXHEADERS)


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection opened by ``open(deadline)``: bounded end to end, its phase known.

    ``tls`` (an SSLContext) makes it https, to ``server_hostname``; ``set_tunnel`` (an http:// proxy)
    sends a CONNECT first. ``phase`` is how far ``open`` got: resolve, connect (or proxy), tls.
    """

    response_class = _Response

    def __init__(self, host, port, tls=None, server_hostname=None, proxied=False, loopback_only=False):
        http.client.HTTPConnection.__init__(self, host, port)
        self.loopback_only = loopback_only
        # The port the Host header leaves out: https://api.latitude.sh is "Host: api.latitude.sh", not ":443".
        self.default_port = 443 if tls is not None else 80
        self.tls = tls
        self.server_hostname = server_hostname
        self.proxied = proxied
        self.phase = "connect"

    def open(self, deadline):
        self.phase = "proxy" if self.proxied else "resolve"
        addresses = _resolve(self.host, self.port, deadline)
        self.phase = "proxy" if self.proxied else "connect"
        error = None
        for family, kind, proto, _name, address in addresses:  # each in turn, as socket.create_connection
            sock = socket.socket(family, kind, proto)
            try:
                deadline.sock = sock
                sock.settimeout(deadline.left())
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                if deadline.is_over():
                    break
                continue
            self.sock = sock
            break
        if self.sock is None:
            raise error or OSError("no address for the host")
        if self.loopback_only:
            _check_loopback_peer(self.sock, self.host, self.tls is not None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tunnel_host:
            self._tunnel()
        if self.tls is not None:
            self.phase = "tls"
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.server_hostname,
                                             do_handshake_on_connect=False)
            deadline.sock = self.sock
            self.sock.do_handshake()

    def connect(self):
        # http.client reconnects on its own when the socket is gone; here only open() connects.
        raise http.client.NotConnected("the connection is closed")


def _check_loopback_peer(sock, host, tls=False):
    """A loopback api_url (plain http, or https that skips the proxy) goes only to this machine: ``host``
    (``localhost``) must have resolved to a loopback address too."""
    try:
        peer = sock.getpeername()[0]
        address = ipaddress.ip_address(peer.split("%")[0])
        loopback = (getattr(address, "ipv4_mapped", None) or address).is_loopback
    except (OSError, ValueError):
        peer, loopback = "an unknown address", False
    if not loopback:
        sock.close()
        why = ("a loopback host is reached directly, never through a proxy, so it must be this machine. Nothing was "
               "sent: give the API's real host name" if tls else "plain http goes only to this machine (the token "
               "would travel unencrypted). Nothing was sent: use https://")
        raise ConfigError("api_url's host %s resolved to %s, which is not a loopback address: %s, or fix how %s "
                          "resolves (/etc/hosts)." % (host, peer, why, host), final=True)


def _dropped(sock):
    """True when an idle kept-alive connection was closed by the server (or has unexpected bytes to read)."""
    pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted do not show on the socket
    if pending is not None and pending():
        return True
    import select  # only here: a connection to reuse
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
