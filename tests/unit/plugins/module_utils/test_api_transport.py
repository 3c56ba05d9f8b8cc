# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the transport rules of LatitudeClient (docs/reliability.md, "Transport bounds").

The URL check, proxies and ~/.netrc, the deadline of one attempt (against small servers of the
test's own on 127.0.0.1), the retry policy's rate-limit budget and invalid waits, and the masking
of secrets in messages.
"""

import json
import socket
import threading
import time

import pytest

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import (
    ConfigError,
    LatitudeClient,
    LatitudeError,
    TransportFailure,
    api_target,
    check_api_url,
    proxy_for,
    validate_api_url,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils import _api as api_module
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_answers import MASK, mask_secrets
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_retry import RetryPolicy, advised_wait
from ansible_collections.latitudesh.cloud.tests.unit.plugins.module_utils.loopback import Listener
from ansible_collections.latitudesh.cloud.tests.unit.plugins.modules.fake_latitude import http_response

TOKEN = "Tk9secret5b1f0c2a7e3d9c4b8a6f1e0d4d063"
NEW_TOKEN = "0f3c2a9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b"  # 36 hex characters, like a real token
PATH = "/auth/api_keys"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "NO_PROXY", "no_proxy")


def params(**overrides):
    base = dict(auth_token=TOKEN, api_url="https://api.example.test", api_timeout=7, api_retries=3,
                validate_certs=True)
    base.update(overrides)
    return base


def make_client(**overrides):
    waits = []
    return LatitudeClient(params(**overrides), sleep=waits.append), waits


class Script(object):
    """Stands in for ``LatitudeClient._exchange`` (one attempt): answers from a list, records every call."""

    def __init__(self):
        self.outcomes = []
        self.calls = []

    def __call__(self, client, method, path, body, deadline):
        self.calls.append(dict(method=method, url=client.base_url + path, kwargs=dict(json=body, timeout=deadline.seconds)))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def script(monkeypatch):
    fake = Script()

    def exchange(client, method, path, body, deadline):
        return fake(client, method, path, body, deadline)

    monkeypatch.setattr(LatitudeClient, "_exchange", exchange)
    return fake


def answer(status, body=None, text=None, headers=None, content_type="application/vnd.api+json; charset=utf-8"):
    resp = http_response(status, body, text=text, headers=headers, content_type=content_type)
    resp.url = "https://api.example.test" + PATH
    return resp


def rate_limited(retry_after=None, meta=None):
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    err = {"code": "RATE_LIMIT_EXCEEDED", "status": "429", "detail": "Too many requests.", "meta": {}}
    if meta is not None:
        err["meta"]["retry_after"] = meta
    return answer(429, {"errors": [err]}, headers=headers)


# --------------------------------------------------------------------------- the URL check


@pytest.mark.parametrize("url", [
    "http://localhost:1\\@127.0.0.1:2",      # urllib3 connected to localhost:1, urlsplit sees 127.0.0.1
    "http://api.example.com\\@127.0.0.1:2",
    "http://127.0.0.1:2\\",
    "https://api.latitude.sh\\x",
])
def test_backslash_is_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "backslash" in info.value.message and "api_url" in info.value.message


@pytest.mark.parametrize("url", [
    "http://user:s3cretpw@127.0.0.1:1",
    "https://user:s3cretpw@api.latitude.sh",
    "https://s3cretpw@api.latitude.sh/",
    "http://127.0.0.1:1@127.0.0.1:2",
    "https://a:s3cretpw@b@api.latitude.sh",
])
def test_userinfo_is_refused_without_echoing_it(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    message = info.value.message
    assert "user name or password" in message and "api_url" in message
    assert "s3cretpw" not in message and "127.0.0.1:1@" not in message


@pytest.mark.parametrize("url", ["user:s3cretpw@api.latitude.sh", "ftp://user:s3cretpw@api.latitude.sh",
                                 "//user:s3cretpw@api.latitude.sh", "http:/user:s3cretpw@127.0.0.1",
                                 # a password holding '#' or '?' (before: quoted up to that character)
                                 "ftp://admin:s3cretpw#x@api.latitude.sh", "https://admin:s3cretpw?x@api.latitude.sh/x y"])
def test_a_refused_url_is_quoted_without_its_password(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "s3cretpw" not in info.value.message and "api_url" in info.value.message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1 :8080", "http://127.0.0.1:8080/ x", "https://api.latitude.sh/\tv", "https://api.latitude.sh\n.evil",
    "https://api.latitude.sh/\x00", "https://api.latitude.sh/\x7f", "https://api.latitude.sh/\u00a0v",
    "https://api.latitude.sh/\u2003v", "https://api.latitude.sh\u200b",
])
def test_whitespace_and_control_characters_are_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "whitespace, a control character or a backslash" in info.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:65536", "http://127.0.0.1:0",
                                 "https://api.latitude.sh:0/", "http://127.0.0.1:-1", "http://127.0.0.1:8o"])
def test_port_outside_the_range_is_refused(url):
    with pytest.raises(ConfigError) as info:
        validate_api_url(url)
    assert "api_url" in info.value.message and "65535" in info.value.message


@pytest.mark.parametrize("url, host", [
    ("http://127.0.0.1:65535", "127.0.0.1"), ("http://127.0.0.1:1", "127.0.0.1"), ("http://127.9.8.7", "127.9.8.7"),
    ("http://[::1]:8080", "[::1]"), ("HTTP://LOCALHOST:3000", "localhost"), ("https://API.latitude.sh", "api.latitude.sh"),
])
def test_the_checked_host_is_the_host_connected_to(url, host):
    assert check_api_url(url)[2] == host
    assert api_target(check_api_url(url)[0])[1] == host  # where the client connects


@pytest.mark.parametrize("url, host", [
    (u"https://b\u00fccher.example", "xn--bcher-kva.example"), (u"https://B\u00dcCHER.example:8443", "xn--bcher-kva.example"),
    (u"https://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "xn--e1afmkfd.xn--p1ai"), ("https://xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_a_non_ascii_host_name_is_connected_to_in_its_idna_form(url, host):
    assert api_target(check_api_url(url)[0])[1] == host


@pytest.mark.parametrize("url", [
    u"https://stra\u00dfe.example",  # IDNA 2003 makes it strasse.example, IDNA 2008 xn--strae-oqa.example: two hosts
    u"https://\u2168.example",  # a Roman numeral that IDNA 2003 turns into "ix"
    u"https://" + u"\u00e4" * 70 + ".example",  # a label longer than DNS allows (before: a UnicodeError traceback)
])
def test_a_host_name_idna_would_change_is_refused_before_any_request(url):
    with pytest.raises(ConfigError) as info:
        check_api_url(url)
    assert "api_url" in info.value.message and "xn--" in info.value.message, info.value.message


def test_plain_http_check_uses_the_host_that_is_connected_to():
    # A name that is not a loopback address, hidden behind an '@' urlsplit reads as userinfo.
    with pytest.raises(ConfigError):
        validate_api_url("http://api.example.com#@127.0.0.1:2")


def test_bad_url_refused_before_any_request(script):
    for url in ("http://user:pw@127.0.0.1:1", "http://vm:1\\@127.0.0.1:2", "http://127.0.0.1:99999"):
        with pytest.raises(ConfigError):
            make_client(api_url=url)
    assert script.calls == []


# --------------------------------------------------------------------------- proxies and ~/.netrc


def with_proxies(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                                 "https://127.0.0.1:8443", "https://localhost:8443", "https://[::1]:8443",
                                 # what the name lookup reads as a loopback address too (before: through the proxy)
                                 "https://127.1:8443",
                                 "https://2130706433:8443", "https://[::ffff:127.0.0.1]:8443", "http://127.1:8080"])
def test_a_loopback_url_never_uses_a_proxy(monkeypatch, url):
    # Whatever the scheme: over https with validate_certs=false (the TLS sandbox), a proxy that ends the TLS
    # tunnel itself would read the admin token.
    with_proxies(monkeypatch)
    conn = make_client(api_url=url, validate_certs=False)[0]._connection()
    assert (conn.host, conn.port, conn._tunnel_host) == (check_api_url(url)[2].strip("[]"), int(url.rsplit(":", 1)[1]), None)


@pytest.mark.parametrize("host", ["api.latitude.sh", "localhost.example", "127.0.0.1.example", "128.0.0.1", "10.1",
                                  "[::2]", "[::ffff:10.0.0.1]", "",
                                  # looked up in DNS (a final dot), and octal as the name lookup reads it: 87.0.0.1
                                  "localhost.", "127.0.0.1.", "0127.0.0.1"])
def test_other_hosts_are_not_loopback(host):
    assert api_module.is_loopback(host) is False


@pytest.mark.parametrize("url, kept", [
    ("https://api.latitude.sh/?token=s3cretvalue", "https://api.latitude.sh/"),
    ("https://api.latitude.sh#s3cretvalue", "https://api.latitude.sh"),
    ("https://api.latitude.sh:99999/?token=s3cretvalue", "https://api.latitude.sh:99999/"),
    # an '@' in the query: what is cut is marked, the URL never reads as another host's
    ("https://api.latitude.sh/?email=ops@example.com&s3cretvalue", "https://..."),
])
def test_a_query_string_is_refused_without_quoting_it(url, kept):
    with pytest.raises(ConfigError) as info:
        check_api_url(url)
    assert "api_url" in info.value.message and "s3cretvalue" not in info.value.message, info.value.message
    assert "api_url %r" % kept in info.value.message, info.value.message


def test_a_malformed_proxy_url_is_refused_without_quoting_its_password(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "socks5:s3cretpw@127.0.0.1://x")
    with pytest.raises(TransportFailure) as info:
        proxy_for("api.latitude.sh", 443)
    assert info.value.phase == "proxy-config" and "s3cretpw" not in str(info.value.cause), info.value.cause
    assert "HTTPS_PROXY" in str(info.value.cause)


@pytest.mark.parametrize("env_var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_loopback_https_url_keeps_the_ca_bundle_variables(monkeypatch, tmp_path, env_var):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env_var, str(bundle))
    import ssl
    loaded = []
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile=None, capath=None: loaded.append(cafile) or
                        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    make_client(api_url="https://127.0.0.1:8443")[0]._connection()
    assert loaded == [str(bundle)]


def test_https_honours_the_proxy_variables_and_no_proxy(monkeypatch):
    with_proxies(monkeypatch)
    conn = make_client()[0]._connection()
    assert (conn.host, conn.port) == ("127.0.0.1", 9)
    assert (conn._tunnel_host, conn._tunnel_port) == ("api.example.test", 443)
    assert "Authorization" not in conn._tunnel_headers  # the token goes inside the tunnel only
    monkeypatch.setenv("NO_PROXY", "api.example.test")
    conn = make_client()[0]._connection()
    assert (conn.host, conn.port, conn._tunnel_host) == ("api.example.test", 443, None)


@pytest.mark.parametrize("no_proxy, proxied", [
    ("example.test", False), (".example.test", False), ("*", False), ("api.example.test:443", False),
    ("other.test", True), ("", True), ("10.0.0.0/8", True),
])
def test_no_proxy_entries_as_requests_reads_them(monkeypatch, no_proxy, proxied):
    with_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", no_proxy)
    assert (proxy_for("api.example.test", 443) is not None) is proxied


def test_no_proxy_cidr_entries_cover_ip_hosts(monkeypatch):
    with_proxies(monkeypatch)
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8")
    assert proxy_for("10.1.2.3", 443) is None
    assert proxy_for("11.1.2.3", 443) is not None


def test_lower_case_proxy_variables_and_all_proxy(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("all_proxy", "127.0.0.1:3128")  # no scheme: http, as requests reads it
    assert proxy_for("api.example.test", 443) == ("127.0.0.1", 3128, {})
    monkeypatch.setenv("https_proxy", "http://proxy.example.test")
    assert proxy_for("api.example.test", 443) == ("proxy.example.test", 80, {})


def test_proxy_credentials_go_to_the_proxy_only_and_are_never_quoted(monkeypatch):
    import base64
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://me%40corp:pr0xy%3Apw@127.0.0.1:3128")
    host, port, headers = proxy_for("api.example.test", 443)
    assert (host, port) == ("127.0.0.1", 3128)
    assert base64.b64decode(headers["Proxy-Authorization"].split()[1]) == b"me@corp:pr0xy:pw"


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4", "https"])
def test_a_proxy_scheme_that_cannot_be_used_is_refused_naming_the_variable(monkeypatch, scheme):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "%s://user:s3cretpw@127.0.0.1:1080" % scheme)
    with pytest.raises(TransportFailure) as info:
        proxy_for("api.example.test", 443)
    text = str(info.value.cause)
    assert info.value.phase == "proxy-config" and info.value.sent is False
    assert "ALL_PROXY" in text and "http://" in text and "NO_PROXY" in text and "s3cretpw" not in text, text
    assert ("SOCKS" in text) is scheme.startswith("socks")


def test_netrc_never_replaces_the_token(monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrcpw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server = Canned()
    try:
        make_client(api_url="http://127.0.0.1:%d" % server.port)[0].get(PATH)
    finally:
        server.close()
    assert b"\r\nAuthorization: %s\r\n" % TOKEN.encode() in server.requests[0]


# --------------------------------------------------------------------------- the deadline of one attempt


class Drip(Listener):
    """A server on 127.0.0.1 that answers every connection slowly, one byte at a time (``silent``: never;
    ``raw``: these bytes instead of an HTTP answer)."""

    def __init__(self, head_first, silent=False, raw=None):
        self.head_first, self.silent, self.raw = head_first, silent, raw
        self.lifetimes = []
        Listener.__init__(self)

    def handle(self, conn):
        started = time.monotonic()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        try:
            conn.recv(65536)
            while self.silent and not self.stop.is_set() and conn.recv(65536):
                pass  # silent until the client gives up
            if self.head_first and not self.silent:
                conn.sendall(head)
                head = b""
            for byte in (head + b" " * 100000 if self.raw is None else self.raw)[:200 * (not self.silent)]:
                if self.stop.is_set():
                    break
                conn.sendall(bytes([byte]))
                time.sleep(0.3)
        except OSError:
            pass  # the client went away: that is the point
        self.lifetimes.append(time.monotonic() - started)
        conn.close()


def failure_from(drip, scheme, method, attempts):
    """``method`` sent to ``drip`` with api_timeout=1, api_retries=1: its LatitudeError and how long it took,
    once ``attempts`` connections have ended (or 3 s more have passed)."""
    try:
        client = LatitudeClient(params(api_url="%s://127.0.0.1:%d" % (scheme, drip.port), api_timeout=1,
                                       api_retries=1), sleep=lambda seconds: None)
        started = time.monotonic()
        with pytest.raises(LatitudeError) as info:
            client.request(method, PATH, {"data": {}} if method == "POST" else None)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 3
        while len(drip.lifetimes) < attempts and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        drip.close()
    return info.value, elapsed


@pytest.mark.parametrize("head_first", [True, False], ids=["dripping-body", "dripping-headers"])
@pytest.mark.parametrize("method, attempts", [("GET", 2), ("POST", 1)])
def test_a_dripping_answer_is_cut_after_api_timeout(head_first, method, attempts):
    drip = Drip(head_first)
    err, elapsed = failure_from(drip, "http", method, attempts)
    assert elapsed < attempts * (1 + 1), "%s attempt(s) took %.1f s" % (attempts, elapsed)
    assert len(drip.lifetimes) == attempts
    assert all(lifetime < 2.0 for lifetime in drip.lifetimes), drip.lifetimes
    assert "no answer within api_timeout=1 s (the whole answer" in err.message
    assert err.timed_out is True
    assert err.maybe_applied is (method == "POST")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_name_lookup_that_hangs_ends_within_api_timeout_and_never_sends_later(monkeypatch, method):
    # A resolver that does not answer (a dead nameserver in resolv.conf) blocks getaddrinfo for many seconds,
    # and no socket exists yet that a deadline could shut down. The attempt must stop waiting at api_timeout,
    # say that nothing was sent, and the lookup finishing later must not send the request after all.
    server = Canned()
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "localhost":
            lookups.append(host)
            time.sleep(2.5)
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    try:
        client = LatitudeClient(params(api_url="http://localhost:%d" % server.port, api_timeout=1, api_retries=0),
                                sleep=lambda seconds: None)
        started = time.monotonic()
        with pytest.raises(LatitudeError) as info:
            client.request(method, PATH, {"data": {}} if method == "POST" else None)
        elapsed = time.monotonic() - started
        time.sleep(2.5)  # the abandoned lookup ends now: its connection must never carry the request
    finally:
        server.close()
    assert lookups == ["localhost"]
    assert elapsed < 1 + 1, "the attempt took %.1f s with api_timeout=1" % elapsed
    assert server.requests == [] or server.requests == [b""], server.requests
    err = info.value
    assert "could not connect to localhost within api_timeout=1 s" in err.message, err.message
    assert "may have been applied" not in err.message
    assert err.maybe_applied is False and err.timed_out is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_tls_handshake_that_stalls_is_cut_and_the_request_counts_as_not_sent(method):
    # The server accepts the connection but never answers the TLS ClientHello (a stuck middlebox): the
    # deadline cuts the handshake, before any byte of the request was sent, so even a create is sent again.
    stalled = Drip(head_first=False, silent=True)
    err, elapsed = failure_from(stalled, "https", method, 2)
    assert elapsed < 2 * (1 + 1), "two attempts took %.1f s" % elapsed
    assert len(stalled.lifetimes) == 2, stalled.lifetimes  # sent again: nothing had been sent
    assert "could not connect to 127.0.0.1 within api_timeout=1 s" in err.message, err.message
    assert "nothing was sent" in err.message and "may have been applied" not in err.message
    assert err.maybe_applied is False and err.timed_out is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_tls_handshake_that_drips_is_cut_and_the_request_counts_as_not_sent(method):
    # The server answers the ClientHello with a TLS record header announcing 16 KiB, then one byte every 0.3 s:
    # each read of the handshake ends well within the socket timeout, so only the deadline ends it.
    dripping = Drip(head_first=False, raw=b"\x16\x03\x03\x40\x00" + b"\x02" * 195)
    err, elapsed = failure_from(dripping, "https", method, 2)
    assert elapsed < 2 * (1 + 1), "two attempts took %.1f s" % elapsed
    assert len(dripping.lifetimes) == 2, dripping.lifetimes  # sent again: nothing had been sent
    assert all(lifetime < 2.5 for lifetime in dripping.lifetimes), dripping.lifetimes  # not the 60 s of the drip
    assert "could not connect to 127.0.0.1 within api_timeout=1 s" in err.message, err.message
    assert "nothing was sent" in err.message and err.maybe_applied is False


def test_a_connection_made_as_the_deadline_passes_is_not_used(monkeypatch):
    # The connect (or TLS handshake) ends just after the deadline, on a busy machine: the request is not sent
    # on it after the time is up, and nothing was sent, so a create may be sent again on the next attempt.
    server = Canned(answer_bytes=b"")
    opened = api_module._Connection.open

    def late_open(conn, deadline):
        opened(conn, deadline)
        time.sleep(1.2)

    monkeypatch.setattr(api_module._Connection, "open", late_open)
    err = failed_post(server, "http://127.0.0.1:%d", api_timeout=1, api_retries=0)
    assert not [sent for sent in server.requests if sent], server.requests
    assert "nothing was sent" in err.message, err.message
    assert err.maybe_applied is False


def failed_post(server, url, **options):
    """The LatitudeError of a create sent to ``server`` at ``url % server.port`` (0.3 s later, the server is closed)."""
    try:
        client = LatitudeClient(params(api_url=url % server.port, **options), sleep=lambda seconds: None)
        with pytest.raises(LatitudeError) as info:
            client.post(PATH, {"data": {}})
        time.sleep(0.3)
    finally:
        server.close()
    return info.value


@pytest.mark.parametrize("peer", ["203.0.113.5", "::ffff:203.0.113.5", "2001:db8::5"])
def test_plain_http_to_localhost_resolved_elsewhere_is_refused_and_nothing_is_sent(monkeypatch, peer):
    # localhost passes the URL check by name; /etc/hosts decides where it goes. The connection stays on
    # 127.0.0.1 here: only the peer address the client reads is replaced.
    server = Canned()
    monkeypatch.setattr(socket.socket, "getpeername", lambda sock: (peer, server.port))
    err = failed_post(server, "http://localhost:%d", api_retries=2)
    assert server.requests in ([], [b""]), server.requests
    message = err.message
    assert "localhost resolved to %s, which is not a loopback address" % peer in message, message
    assert "Nothing was sent" in message and err.maybe_applied is False


def test_https_to_localhost_resolved_elsewhere_is_refused_and_nothing_is_sent(monkeypatch):
    # A loopback host skips the proxy; should /etc/hosts send localhost elsewhere, the token (with
    # validate_certs=false) must not go there: the peer is checked before the TLS handshake.
    server = Canned()
    monkeypatch.setattr(socket.socket, "getpeername", lambda sock: ("203.0.113.5", server.port))
    err = failed_post(server, "https://localhost:%d", api_retries=2, validate_certs=False)
    assert server.requests in ([], [b""]), server.requests
    assert "localhost resolved to 203.0.113.5, which is not a loopback address" in err.message, err.message
    assert "never through a proxy" in err.message and err.maybe_applied is False


def test_plain_http_to_localhost_on_a_loopback_address_is_sent(monkeypatch):
    server = Canned()
    try:
        client = LatitudeClient(params(api_url="http://localhost:%d" % server.port), sleep=lambda seconds: None)
        assert client.get(PATH) == {"data": []}
    finally:
        server.close()


def test_a_proxy_whose_name_lookup_hangs_is_named_and_nothing_is_sent(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def slow_getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        if host == "proxy.example.test":
            time.sleep(2.5)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    client = LatitudeClient(params(api_timeout=1, api_retries=0), sleep=lambda seconds: None)
    started = time.monotonic()
    with pytest.raises(LatitudeError) as info:
        client.post(PATH, {"data": {}})
    elapsed = time.monotonic() - started
    assert elapsed < 1 + 1, "the attempt took %.1f s with api_timeout=1" % elapsed
    assert lookups == ["proxy.example.test"]  # the API's host is looked up by the proxy, not here
    assert "could not connect to proxy.example.test within api_timeout=1 s" in info.value.message
    assert info.value.maybe_applied is False


def test_a_dropped_connection_handled_as_the_deadline_passes_is_not_taken_for_a_cut(monkeypatch):
    # The server reads the whole create and closes without answering; handling that takes until past the deadline
    # (a busy machine). No socket was cut, so the failure says itself that the request was sent: never sent again.
    server = Canned(answer_bytes=b"")
    try:
        client = LatitudeClient(params(api_url="http://127.0.0.1:%d" % server.port, api_timeout=1, api_retries=2),
                                sleep=lambda seconds: None)
        exchange = client._exchange

        def slow_to_fail(*args, **kwargs):
            try:
                return exchange(*args, **kwargs)
            except TransportFailure:
                time.sleep(1.1)
                raise

        monkeypatch.setattr(client, "_exchange", slow_to_fail)
        with pytest.raises(LatitudeError) as info:
            client.post(PATH, {"data": {}})
        time.sleep(0.3)
    finally:
        server.close()
    assert len([sent for sent in server.requests if sent.startswith(b"POST")]) == 1, server.requests
    assert info.value.maybe_applied is True and "may have been applied" in info.value.message, info.value.message


def test_a_quick_answer_is_not_cut(monkeypatch):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    body = json.dumps({"data": [], "meta": {}}).encode()

    def serve():
        conn, _addr = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        time.sleep(1.5)  # the connection stays open past api_timeout: the answer was complete
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client = LatitudeClient(params(api_url="http://127.0.0.1:%s" % server.getsockname()[1], api_timeout=1),
                                sleep=lambda seconds: None)
        assert client.get(PATH) == {"data": [], "meta": {}}
        time.sleep(1.2)  # the deadline of the finished attempt must not cut anything later
    finally:
        thread.join()
        server.close()


# --------------------------------------------------------------------------- rate-limit waits


@pytest.mark.parametrize("value", ["-5", "-0.5", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "soon", "3 s",
                                   "Mon, 99 Foo 2015 07:28:00 GMT"])
def test_invalid_retry_after_falls_back_to_the_backoff(script, value):
    script.outcomes = [rate_limited(retry_after=value), rate_limited(retry_after=value), answer(200, {"data": []})]
    client, waits = make_client(api_timeout=30)
    client.get(PATH)
    assert len(waits) == 2
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0, waits


@pytest.mark.parametrize("value", [-5, -0.5, "nan", "NaN", "inf", "-inf", 1e999, "soon", True, None, [], {}])
def test_invalid_meta_retry_after_falls_back_to_the_backoff(script, value):
    script.outcomes = [rate_limited(meta=value), answer(200, {"data": []})]
    client, waits = make_client(api_timeout=30)
    client.get(PATH)
    assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0, waits


def test_invalid_header_with_a_valid_meta_uses_the_meta():
    assert advised_wait(rate_limited(retry_after="nan", meta=4)) == 4.0


def test_retry_after_20_for_ever_ends_within_the_budget(script):
    # api_timeout=1, api_retries=3: 1.5 s of rate-limit waits in all; 20 s does not fit.
    script.outcomes = [rate_limited(retry_after=20) for dummy in range(4)]
    client, waits = make_client(api_timeout=1, api_retries=3)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert waits == [] and len(script.calls) == 1
    message = info.value.message
    assert "asked to wait 20 s" in message and "api_retries x api_timeout / 2" in message
    assert info.value.status == 429


def test_rate_limit_waits_of_a_task_never_exceed_the_budget(script):
    # Budget: 5 x 4 / 2 = 10 s. Three waits of 3 s fit; the fourth would make 12 s.
    script.outcomes = [rate_limited(retry_after=3) for dummy in range(4)]
    client, waits = make_client(api_timeout=4, api_retries=5)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert waits == [3.0, 3.0, 3.0]
    assert "more than the 1.0 s left of the 10.0 s" in info.value.message


def test_the_budget_is_shared_by_every_request_of_the_task(script):
    script.outcomes = [rate_limited(retry_after=4), answer(200, {"data": []}),
                       rate_limited(retry_after=4), rate_limited(retry_after=4)]
    client, waits = make_client(api_timeout=4, api_retries=5)  # 10 s
    client.get(PATH)
    with pytest.raises(LatitudeError):
        client.get(PATH)
    assert waits == [4.0, 4.0]


@pytest.mark.parametrize("retries, timeout, budget", [(5, 30, 75.0), (3, 1, 1.5), (0, 30, 0.0), (3, 10, 15.0)])
def test_rate_limit_budget_formula(retries, timeout, budget):
    assert RetryPolicy(retries, timeout).rate_limit_budget == budget


def test_default_worst_case_of_one_request_is_under_five_minutes():
    # api_retries + 1 attempts of at most api_timeout (+1 s for the deadline to act), the backoffs
    # between them (at most 1, 2, 4, 8, 16 s) and the task's rate-limit budget.
    retries, timeout = 5, 30
    worst = (retries + 1) * (timeout + 1) + sum(min(30, 2 ** n) for n in range(retries)) \
        + RetryPolicy(retries, timeout).rate_limit_budget
    assert worst < 300, worst


# --------------------------------------------------------------------------- secrets in messages


FORMS = {
    "json": '{"token": "%s"}',
    "json-escaped-in-html": '<pre>{\\"token\\":\\"%s\\"}</pre>',
    "json-double-escaped": '{\\\\\\"token\\\\\\": \\\\\\"%s\\\\\\"}',
    "python-repr": "{'token': '%s'}",
    "query": "token=%s&x=1",
    "form-colon": "token: %s",
    "html-entities": "&quot;token&quot;:&quot;%s&quot;",
    "unicode-escaped": "{\\u0022token\\u0022: \\u0022%s\\u0022}",
    "uppercase-key": '{"TOKEN":"%s"}',
    "hex-run": "the new key is %s, keep it",
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_mask_secrets_each_form(form):
    secret = "Xy7-" + NEW_TOKEN if form != "hex-run" else NEW_TOKEN
    masked = mask_secrets(FORMS[form] % secret)
    assert secret not in masked and NEW_TOKEN[:20] not in masked, masked
    assert MASK in masked


def test_mask_secrets_keeps_what_is_not_a_secret():
    text = '{"token_last_slice": "4d063", "id": "tok_x1ZJrdx5qg4LV", "name": "ci", "hex": "%s"}' % ("a" * 31)
    assert mask_secrets(text) == text


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("status, content_type", [(500, "text/html"), (400, "text/plain"), (404, "application/json")])
def test_error_messages_of_reads_mask_each_form(script, form, status, content_type):
    secret = "Xy7-" + NEW_TOKEN if form != "hex-run" else NEW_TOKEN
    body = "<html><body>upstream said: %s</body></html>" % (FORMS[form] % secret)
    if content_type == "application/json":
        body = json.dumps({"detail": FORMS[form] % secret})
    script.outcomes = [answer(status, text=body, content_type=content_type)]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert secret not in info.value.message and NEW_TOKEN[:16] not in info.value.message, info.value.message
    assert MASK in info.value.message


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("status, text, content_type", [
    (422, "QUOTED-MARKER plain text", "text/plain"),
    (500, "<html>QUOTED-MARKER</html>", "text/html"),
    (400, '{"data": {"attributes": {"name": "QUOTED-MARKER"}}}', "application/vnd.api+json"),
    (201, '{"data": {"attributes": {"name": "QUOTED-MARKER"', "application/vnd.api+json"),
    (200, "QUOTED-MARKER", "text/plain"),
])
def test_answers_to_create_and_rotate_are_never_quoted(script, method, status, text, content_type):
    script.outcomes = [answer(status, text=text, content_type=content_type)]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.request(method, PATH, {"data": {}})
    assert "QUOTED-MARKER" not in info.value.message
    assert "not quoted" in info.value.message


def test_json_api_errors_of_a_create_are_still_shown(script):
    script.outcomes = [answer(422, {"errors": [{"detail": "Name can't be blank",
                                                "source": {"pointer": "/data/attributes/name"}}]})]
    client, waits = make_client()
    with pytest.raises(LatitudeError) as info:
        client.post(PATH, {"data": {}})
    assert "Name can't be blank (at /data/attributes/name)" in info.value.message


# --------------------------------------------------------------------------- hostile answers and input


class Canned(Listener):
    """A server on 127.0.0.1 that sends the same raw answer on every connection and records the request lines."""

    def __init__(self, answer_bytes=b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"data\":[]}"):
        self.answer_bytes = answer_bytes
        self.requests = []
        Listener.__init__(self)

    def handle(self, conn):
        conn.settimeout(2)
        try:
            self.requests.append(conn.recv(65536))
            conn.sendall(self.answer_bytes)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):  # read what is left (a request body) until the client closes
                pass
        except OSError:
            pass
        conn.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
@pytest.mark.parametrize("target", ["http://127.0.0.1:%d/auth/api_keys", "http://vm:%d/auth/api_keys", "/auth/api_keys"])
def test_a_redirect_is_never_followed(status, method, target):
    # A POST or PUT sent again by a redirect would create or rotate twice; a redirect to another
    # port, host or scheme would take the request where api_url does not point.
    other = Canned()
    origin = None
    try:
        location = target % other.port if "%d" in target else target
        origin = Canned(("HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                         % (status, location)).encode())
        client = LatitudeClient(params(api_url="http://127.0.0.1:%d" % origin.port, api_timeout=3, api_retries=2),
                                sleep=lambda seconds: None)
        with pytest.raises(LatitudeError) as info:
            client.request(method, PATH, None if method == "GET" else {"data": {}})
    finally:
        other.close()
        if origin is not None:
            origin.close()
    assert other.requests == []
    assert len(origin.requests) == 1, [req.split(b"\r\n")[0] for req in origin.requests]
    message = info.value.message
    assert info.value.status == status
    assert "HTTP %d" % status in message and "redirect" in message and "api_url" in message, message
    assert TOKEN not in message


@pytest.mark.parametrize("token", ["abc\ndef0123", "abc\rdef0123", "\u0442\u043e\u043a\u0435\u043d-0123",
                                   "tok\u20acn-0123", "abc\x00def0123", "abc\x7fdef0123"])
def test_a_token_that_an_http_header_cannot_carry_is_refused_before_any_request(script, token):
    with pytest.raises(ConfigError) as info:
        make_client(auth_token=token)
    message = info.value.message
    assert "auth_token" in message and "character" in message, message
    assert token.strip() not in message and "0123" not in message
    assert script.calls == []


@pytest.mark.parametrize("status", [200, 404, 429, 500])
def test_deeply_nested_json_is_an_error_not_a_crash(script, status):
    deep = "[" * 100000 + "]" * 100000
    script.outcomes = [answer(status, text=deep, content_type="application/json")]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert info.value.status == status


@pytest.mark.parametrize("value", ["Mon, 01 Jan 99999 00:00:00", "Mon, 01 Jan 99999 00:00:00 GMT",
                                   "Mon, 01 Jan 2020 00:00:00 +99999999999"])
def test_an_unusable_retry_after_date_falls_back_to_the_backoff(script, value):
    script.outcomes = [rate_limited(retry_after=value), answer(200, {"data": []})]
    client, waits = make_client(api_timeout=30)
    client.get(PATH)
    assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0, waits


@pytest.mark.parametrize("timeout", [3601, 10 ** 11, 2 ** 63])
def test_an_api_timeout_too_long_to_bound_anything_is_refused(script, timeout):
    with pytest.raises(ConfigError) as info:
        make_client(api_timeout=timeout)
    assert "api_timeout" in info.value.message and "3600" in info.value.message
    assert script.calls == []


def _escape_every(text, step):
    """``text`` with every ``step``-th character written as a JSON ``\\uXXXX`` escape."""
    return "".join("\\u%04x" % ord(char) if index % step == 0 else char for index, char in enumerate(text))


ESCAPED_BODIES = {
    "detail-with-escaped-admin-token": ('{"errors": [{"detail": "bad key %s"}]}', TOKEN),
    "detail-with-escaped-new-token": ('{"errors": [{"detail": "issued %s"}]}', NEW_TOKEN),
    "detail-quoting-escaped-token-key": ('{"errors": [{"detail": "{\\"\\u0074oken\\": \\"Xy7-secretvalue\\"}"}]}',
                                         None),
    "title-escaped-token-key": ('{"errors": [{"title": "\\u0074oken: Xy7-secretvalue"}]}', None),
    "message-escaped-token-key": ('{"message": "\\u0074oken=Xy7-secretvalue"}', None),
    "json-without-errors-escaped-key": ('{"data": {"\\u0074oken": "Xy7-secretvalue"}}', None),
    "html-escaped-token-key": ('<html>{"\\u0074oken":"Xy7-secretvalue"}</html>', None),
    "html-url-encoded": ("<html>a=1&token%3DXy7-secretvalue</html>", None),
}


@pytest.mark.parametrize("case", sorted(ESCAPED_BODIES))
def test_error_messages_mask_secrets_written_with_escapes(script, case):
    body, secret = ESCAPED_BODIES[case]
    if secret is not None:
        body = body % _escape_every(secret, 7)
    secret = secret or "Xy7-secretvalue"
    content_type = "text/html" if body.startswith("<") else "application/json"
    script.outcomes = [answer(500, text=body, content_type=content_type)]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    message = info.value.message
    assert secret not in message and secret[-12:] not in message, message
    assert MASK in message, message


@pytest.mark.parametrize("text", ["access_token=Xy7-secretvalue&x=1", '{"api_token": "Xy7-secretvalue"}',
                                  '{"session_token":"Xy7-secretvalue"}', '{"token": ["Xy7-secretvalue"]}'])
def test_mask_secrets_covers_keys_ending_in_token_and_bracketed_values(text):
    masked = mask_secrets(text)
    assert "Xy7-secretvalue" not in masked and MASK in masked, masked


def test_escapes_that_hide_no_secret_still_read_as_they_should(script):
    # Rails writes <, > and & in JSON strings as \u003c, \u003e and \u0026.
    body = '{"errors": [{"detail": "name \\u003cci\\u003e \\u0026 \\"x\\" is taken"}]}'
    script.outcomes = [answer(422, text=body, content_type="application/json")]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert 'failed with HTTP 422: name <ci> & "x" is taken' in info.value.message, info.value.message


def _gzip_of_spaces(mebibytes):
    import gzip
    import io
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as packed:
        for dummy in range(mebibytes):
            packed.write(b" " * (1 << 20))
    return buf.getvalue()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_an_answer_larger_than_the_cap_is_not_read(method, encoding):
    # 64 MiB of spaces: in gzip some 64 KiB on the wire. Read whole, it held the task's memory (and
    # CPU, once the bytes were in) without bound: a 30 MiB bomb decoded to 30 GiB.
    body = _gzip_of_spaces(64) if encoding == "gzip" else b" " * (17 << 20)
    server = Canned(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: %s\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n" % (encoding, len(body))).encode() + body)
    try:
        client = LatitudeClient(params(api_url="http://127.0.0.1:%d" % server.port, api_timeout=10, api_retries=2),
                                sleep=lambda seconds: None)
        started = time.monotonic()
        with pytest.raises(LatitudeError) as info:
            client.request(method, PATH, None if method == "GET" else {"data": {}})
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert "larger than 16 MiB" in info.value.message, info.value.message
    assert info.value.status == 200
    assert len(server.requests) == 1  # not sent again: the next answer would be as large
    assert info.value.maybe_applied is (method == "POST")
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("url, hidden", [
    ("http://user:s3cretpw@127.0.0.1:1", ["s3cretpw", "user:s3cretpw"]),
    ("https://s3cretpw@api.latitude.sh/", ["s3cretpw"]),
    ("http://127.0.0.1:1\\@user:s3cretpw@localhost:2", ["s3cretpw"]),
    ("https://a:s3cretpw@b@api.latitude.sh", ["s3cretpw"]),
    ("ftp://admin:s3cr#et@api.latitude.sh", ["s3cr#et"]), ("https://admin:s3cr?et@api.latitude.sh/x y", ["s3cr?et"]),
])
def test_url_secrets_names_every_password_for_the_no_log_values(url, hidden):
    found = LatitudeClient.url_secrets(url)
    for value in hidden:
        assert value in found, found
    assert not any("api.latitude.sh" in value or "localhost" in value for value in found), found


@pytest.mark.parametrize("url", ["https://api.latitude.sh", "http://127.0.0.1:8080/a@b", "", None])
def test_url_secrets_of_a_url_without_userinfo_is_empty_or_only_the_path(url):
    found = LatitudeClient.url_secrets(url)
    assert not any("api.latitude.sh" in value for value in found), found


@pytest.mark.parametrize("url", ["http://[::1%25lo]:8080", "http://[::1%25x]:8080", "https://[fe80::1%25eth0]:443",
                                 "http://[::1%2540evil]:1"])
def test_an_ipv6_zone_index_is_refused_before_any_request(script, url):
    # A Host header cannot carry it (requests raised InvalidURL, which read as a failed connection that may have
    # applied a write).
    with pytest.raises(ConfigError) as info:
        make_client(api_url=url)
    assert "api_url" in info.value.message and "zone" in info.value.message, info.value.message
    assert script.calls == []


@pytest.mark.parametrize("status", [500, 200])
def test_a_large_error_body_is_masked_quickly(script, status):
    # Only the start of a body can be quoted; masking 15 MiB of escapes took some 12 s of CPU.
    script.outcomes = [answer(status, text="%41" * (5 << 20), content_type="text/html")]
    client, waits = make_client(api_retries=0)
    started = time.monotonic()
    with pytest.raises(LatitudeError):
        client.get(PATH)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("sep", ["\n", "\r\n  ", " ", "<br>\n"])
def test_the_admin_token_wrapped_over_lines_is_masked(script, sep):
    body = "<html><pre>Authorization: %s%s%s</pre></html>" % (TOKEN[:18], sep, TOKEN[18:])
    script.outcomes = [answer(500, text=body, content_type="text/html")]
    client, waits = make_client(api_retries=0)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    message = info.value.message
    assert TOKEN[:10] not in message and TOKEN[-10:] not in message, message
    assert MASK in message


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unreachable_proxy_is_named_and_nothing_counts_as_sent(monkeypatch, method):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:%d" % _closed_port())
    client, waits = make_client(api_retries=1)  # api.example.test: only the proxy is connected to
    with pytest.raises(LatitudeError) as info:
        client.request(method, PATH, None if method == "GET" else {"data": {}})
    message = info.value.message
    assert "proxy" in message and "HTTPS_PROXY" in message and "NO_PROXY" in message, message
    assert "may have been applied" not in message and info.value.maybe_applied is False, message
    assert len(waits) == 1  # retried once: a proxy may come back


def test_a_socks_proxy_is_named_and_not_retried(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:%d" % _closed_port())
    client, waits = make_client(api_retries=3)
    with pytest.raises(LatitudeError) as info:
        client.post(PATH, {"data": {}})
    message = info.value.message
    assert "SOCKS" in message and "ALL_PROXY" in message and "http://" in message, message
    assert "may have been applied" not in message and info.value.maybe_applied is False, message
    assert waits == []


# --------------------------------------------------------------------------- the task's time budget


class Clock(object):
    """A monotonic clock that moves only when a scripted attempt or a wait says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_task_budget_is_api_retries_plus_three_times_api_timeout():
    assert LatitudeClient(params(api_timeout=30, api_retries=5)).task_budget == 240  # under 5 minutes
    assert LatitudeClient(params(api_timeout=7, api_retries=0)).task_budget == 21


def test_retries_stop_when_the_task_budget_is_spent(monkeypatch):
    clock = Clock()
    calls = []

    def slow_500(client, method, path, body, deadline):  # every attempt takes 12 s and fails
        calls.append(method)
        clock.now += 12
        return http_response(500, {"errors": [{"status": "500", "detail": "busy"}]})

    monkeypatch.setattr(LatitudeClient, "_exchange", slow_500)
    monkeypatch.setattr("random.random", lambda: 1.0)  # the longest backoff: 1, 2, 4, 8, 16 s
    client = LatitudeClient(params(api_timeout=10, api_retries=5), sleep=clock.sleep, clock=clock)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    message = str(info.value)
    assert "time budget of 80 s" in message and "(5 + 3) x 10" in message, message
    assert "The API, or the way to it (name lookup, proxy, network), answered too slowly" in message, message
    assert "may have been applied" not in message
    # Five 12 s attempts and 15 s of backoff end at 75 s; the next 16 s backoff would pass 80 s.
    assert clock.now - 1000.0 == 75, "no attempt or wait ends after the budget"
    assert len(calls) == 5, calls  # retried, but not all api_retries=5 times


def test_a_request_after_the_budget_is_spent_is_not_sent_and_a_write_before_it_may_have_been_applied(monkeypatch):
    clock = Clock()
    calls = []

    def answer(client, method, path, body, deadline):
        calls.append(method)
        if method == "PATCH":  # the write is sent, its answer lost, and the time is up before a retry
            clock.now += 32
            raise TransportFailure("answer", ConnectionResetError(104, "Connection reset by peer"))
        clock.now += 29
        return http_response(200, {"data": []})

    monkeypatch.setattr(LatitudeClient, "_exchange", answer)
    client = LatitudeClient(params(api_timeout=30, api_retries=0), sleep=clock.sleep, clock=clock)
    assert client.task_budget == 90
    client.get(PATH)
    client.get(PATH)
    with pytest.raises(LatitudeError) as info:
        client.patch(PATH + "/tok_a", {"data": {}})
    assert calls == ["GET", "GET", "PATCH"]
    assert info.value.maybe_applied is True and "may have been applied" in str(info.value)
    with pytest.raises(LatitudeError) as info:
        client.get(PATH)
    assert calls == ["GET", "GET", "PATCH"], "nothing is sent once the budget is spent"
    assert "time budget of 90 s" in str(info.value)


def test_an_attempt_gets_only_what_is_left_of_the_budget(monkeypatch):
    clock = Clock()
    deadlines = []
    real_deadline = api_module.Deadline

    def recording_deadline(seconds):
        deadlines.append(seconds)
        return real_deadline(seconds)

    monkeypatch.setattr(api_module, "Deadline", recording_deadline)
    monkeypatch.setattr(LatitudeClient, "_exchange", lambda *a, **k: http_response(200, {"data": []}))
    client = LatitudeClient(params(api_timeout=10, api_retries=0), sleep=clock.sleep, clock=clock)
    client.get(PATH)
    clock.now += 25  # 5 s of the 30 s budget left
    client.get(PATH)
    assert deadlines == [10, 5]


def test_connecting_gets_only_what_is_left_of_the_budget():
    """A connect that is not answered (there is no socket to shut down yet) ends with what is left of the
    budget, not a whole api_timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = socket.create_connection(listener.getsockname())  # fills the accept queue: the next SYN is dropped
    clock = Clock()
    try:
        client = LatitudeClient(params(api_url="http://127.0.0.1:%d" % listener.getsockname()[1], api_timeout=4,
                                       api_retries=0), sleep=clock.sleep, clock=clock)
        clock.now += client.task_budget - 0.5  # 0.5 s of the 12 s budget left
        started = time.monotonic()
        with pytest.raises(LatitudeError) as info:
            client.post(PATH, {"data": {}})
        elapsed = time.monotonic() - started
    finally:
        queued.close()
        listener.close()
    assert elapsed < 2.5, "the attempt took %.1f s with 0.5 s of the budget left" % elapsed
    assert info.value.maybe_applied is False, str(info.value)
