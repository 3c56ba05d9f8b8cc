# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The http.client transport on the wire, against servers and a CONNECT proxy of the test's own on 127.0.0.1.

Framing (chunked, HTTP/1.0, a short Content-Length, gzip sent although identity was asked for), the
kept-alive connection and its reuse, the bounded DNS lookup, TLS with a CA bundle variable, and an
http:// proxy: the CONNECT carries Proxy-Authorization, the token goes only inside the TLS tunnel.
"""

import gzip
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import LatitudeClient, LatitudeError
from ansible_collections.latitudesh.cloud.tests.unit.plugins.module_utils.loopback import Listener

TOKEN = "Tk9secret5b1f0c2a7e3d9c4b8a6f1e0d4d063"
PATH = "/auth/api_keys"
DOC = {"data": [], "meta": {}}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def client_for(url, **overrides):
    params = dict(auth_token=TOKEN, api_url=url, api_timeout=3, api_retries=0, validate_certs=True)
    params.update(overrides)
    return LatitudeClient(params, sleep=lambda seconds: None)


def _read_request(conn):
    """One request (head and Content-Length body) from ``conn``, or b"" when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return data


class Server(Listener):
    """Answers each request of each connection with ``answers`` in turn (bytes, or a callable(conn) -> bool to go on).

    Records the requests per connection; with ``tls=(cert, key)`` it speaks https.
    """

    def __init__(self, answers, tls=None, close_after=None):
        self.answers = list(answers)
        self.close_after = close_after  # requests per connection before the server closes it (no notice)
        self.connections = []
        self.context = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*tls)
        Listener.__init__(self)

    @property
    def requests(self):
        return [request for connection in self.connections for request in connection]

    def handle(self, conn):
        received = []
        self.connections.append(received)
        try:
            conn.settimeout(5)
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            while self.answers:
                request = _read_request(conn)
                if not request:
                    break
                received.append(request)
                answer = self.answers.pop(0)
                if callable(answer):
                    if not answer(conn):
                        break
                else:
                    conn.sendall(answer)
                if self.close_after and len(received) >= self.close_after:
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


def ok(body=None, extra=b""):
    data = json.dumps(DOC if body is None else body).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(data), extra)) + data


@pytest.fixture
def clean_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- framing


def test_a_chunked_answer_is_read_whole(clean_env):
    data = json.dumps(DOC).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 5]), data[i:i + 5]) for i in range(0, len(data), 5))
    server = Server([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunks + b"0\r\n\r\n"])
    try:
        assert client_for("http://127.0.0.1:%d" % server.port).get(PATH) == DOC
    finally:
        server.close()


def test_an_http_1_0_answer_ended_by_closing_is_read_whole(clean_env):
    def answer(conn):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + json.dumps(DOC).encode())
        return False  # close: the end of the body

    server = Server([answer, ok()])
    try:
        client = client_for("http://127.0.0.1:%d" % server.port)
        assert client.get(PATH) == DOC
        assert client.get(PATH) == DOC  # a new connection: HTTP/1.0 closes
    finally:
        server.close()
    assert [len(connection) for connection in server.connections] == [1, 1]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_answer_shorter_than_its_content_length_is_a_failed_connection(clean_env, method):
    def short(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"data\": [")
        return False

    server = Server([short])
    try:
        with pytest.raises(LatitudeError) as info:
            client_for("http://127.0.0.1:%d" % server.port).request(method, PATH, None if method == "GET" else {})
    finally:
        server.close()
    assert "the connection failed before an answer arrived (IncompleteRead)" in info.value.message
    assert info.value.maybe_applied is (method == "POST")


def test_gzip_sent_although_identity_was_asked_for_is_decoded(clean_env):
    data = gzip.compress(json.dumps(DOC).encode())
    server = Server([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(data) + data])
    try:
        assert client_for("http://127.0.0.1:%d" % server.port).get(PATH) == DOC
    finally:
        server.close()
    assert b"\r\nAccept-Encoding: identity\r\n" in server.requests[0]


@pytest.mark.parametrize("url, proxy, host", [
    ("https://api.example.test", None, b"api.example.test"),
    ("https://api.example.test:8443", None, b"api.example.test:8443"),
    ("https://api.example.test", "http://127.0.0.1:3128", b"api.example.test"),
    ("http://127.0.0.1:80", None, b"127.0.0.1"),
    ("http://[::1]:8080", None, b"[::1]:8080"),
])
def test_the_host_header_leaves_out_the_default_port_of_the_scheme(clean_env, monkeypatch, url, proxy, host):
    if proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
    conn = client_for(url)._connection()
    conn.putrequest("GET", PATH)  # buffered, nothing sent
    assert b"\r\nHost: %s\r\n" % host in b"\r\n".join(conn._buffer) + b"\r\n", conn._buffer


# --------------------------------------------------------------------------- the kept-alive connection


def test_the_requests_of_a_task_share_one_connection(clean_env):
    server = Server([ok(), ok(), ok()])
    try:
        client = client_for("http://127.0.0.1:%d" % server.port)
        for dummy in range(3):
            assert client.get(PATH) == DOC
    finally:
        server.close()
    assert [len(connection) for connection in server.connections] == [3]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_a_connection_the_server_closed_is_not_reused_and_nothing_is_sent_twice(clean_env, method):
    server = Server([ok(), ok(extra=b"")], close_after=1)  # closes each connection after one answer, no notice
    try:
        client = client_for("http://127.0.0.1:%d" % server.port)
        assert client.get(PATH) == DOC
        time.sleep(0.2)  # the server's FIN arrives
        assert client.request(method, PATH, None if method == "GET" else {"data": {}}) == DOC
    finally:
        server.close()
    assert [len(connection) for connection in server.connections] == [1, 1]


# --------------------------------------------------------------------------- the DNS lookup is bounded


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_dns_lookup_that_hangs_ends_within_api_timeout(clean_env, monkeypatch, method):
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow.example.test":
            time.sleep(4)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    client = client_for("https://slow.example.test", api_timeout=1)
    started = time.monotonic()
    with pytest.raises(LatitudeError) as info:
        client.request(method, PATH, None if method == "GET" else {"data": {}})
    assert time.monotonic() - started < 1.8
    assert "could not connect to slow.example.test within api_timeout=1 s (name lookup" in info.value.message
    assert info.value.maybe_applied is False and "may have been applied" not in info.value.message


def test_a_name_that_does_not_resolve_is_named(clean_env, monkeypatch):
    def missing(host, *args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", missing)
    with pytest.raises(LatitudeError) as info:
        client_for("https://nowhere.example.test").post(PATH, {"data": {}})
    assert "could not connect to https://nowhere.example.test (its host name could not be resolved)" \
        in info.value.message
    assert info.value.maybe_applied is False


# --------------------------------------------------------------------------- TLS and the CONNECT proxy


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    openssl = shutil.which("openssl")
    if not openssl:
        if "openssl" not in os.environ.get("LATITUDESH_ALLOW_MISSING", "").split(","):
            pytest.fail("openssl is needed to make a self-signed certificate (or set LATITUDESH_ALLOW_MISSING=openssl)")
        pytest.skip("openssl is not installed (allowed by LATITUDESH_ALLOW_MISSING)")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:api.example.test", "-days", "1", "-keyout", str(directory / "key.pem"),
                    "-out", str(directory / "cert.pem")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(directory / "cert.pem"), str(directory / "key.pem")


def test_a_ca_bundle_variable_is_trusted(clean_env, monkeypatch, certificate):
    server = Server([ok()], tls=certificate)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
        assert client_for("https://127.0.0.1:%d" % server.port).get(PATH) == DOC
    finally:
        server.close()


def test_an_untrusted_certificate_fails_at_once_and_sends_nothing(clean_env, certificate):
    server = Server([ok()], tls=certificate)
    try:
        with pytest.raises(LatitudeError) as info:
            client_for("https://127.0.0.1:%d" % server.port, api_retries=3).post(PATH, {"data": {}})
    finally:
        server.close()
    assert "TLS verification failed (SSLCertVerificationError)" in info.value.message
    assert info.value.maybe_applied is False and server.requests == []


class ConnectProxy(object):
    """An http:// proxy on 127.0.0.1: records each CONNECT and every byte the client sends through it.

    It tunnels to the port asked for on 127.0.0.1, whatever the host (a loopback API URL is never proxied).

    ``refuse``: answer 407 instead of making the tunnel.
    """

    def __init__(self, refuse=False):
        self.refuse = refuse
        self.connects = []
        self.through = b""  # what the client sent inside the tunnel
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve)
        self.thread.daemon = True
        self.thread.start()

    def _serve(self):
        try:
            conn, _addr = self.listener.accept()
        except OSError:
            return
        conn.settimeout(5)
        head = _read_request(conn)
        self.connects.append(head)
        if self.refuse:
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        port = head.split(b" ")[1].rpartition(b":")[2]
        upstream = socket.create_connection(("127.0.0.1", int(port)))  # every host is this machine here
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(source, sink, record):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if record:
                        self.through += data
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pipe, args=(upstream, conn, False))
        back.daemon = True
        back.start()
        pipe(conn, upstream, True)
        back.join(5)
        conn.close()
        upstream.close()

    def close(self):
        self.listener.close()


def test_https_through_an_http_proxy_keeps_the_token_inside_the_tunnel(clean_env, monkeypatch, certificate):
    server = Server([ok()], tls=certificate)
    proxy = ConnectProxy()
    real = socket.getaddrinfo
    looked_up = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: looked_up.append(host) or real(host, *a, **k))
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://me:pr0xypw@127.0.0.1:%d" % proxy.port)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
        assert client_for("https://api.example.test:%d" % server.port).get(PATH) == DOC
    finally:
        server.close()
        proxy.close()
    assert "api.example.test" not in looked_up  # the proxy looks the API's host up
    connect = proxy.connects[0]
    assert connect.startswith(b"CONNECT api.example.test:%d HTTP/1." % server.port), connect
    assert b"\r\nProxy-Authorization: Basic bWU6cHIweHlwdw==\r\n" in connect  # me:pr0xypw
    assert TOKEN.encode() not in connect and TOKEN.encode() not in proxy.through  # only inside TLS
    assert b"\r\nAuthorization: %s\r\n" % TOKEN.encode() in server.requests[0]
    assert b"\r\nHost: api.example.test:%d\r\n" % server.port in server.requests[0]
    assert b"Proxy-Authorization" not in server.requests[0]


def test_a_loopback_https_url_never_goes_through_the_proxy(clean_env, monkeypatch, certificate):
    server = Server([ok()], tls=certificate)
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:%d" % proxy.port)
        assert client_for("https://127.0.0.1:%d" % server.port, validate_certs=False).get(PATH) == DOC
    finally:
        server.close()
        proxy.close()
    assert proxy.connects == [] and len(server.requests) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_proxy_that_refuses_the_tunnel_is_named_and_nothing_counts_as_sent(clean_env, monkeypatch, method):
    proxy = ConnectProxy(refuse=True)
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://me:pr0xypw@127.0.0.1:%d" % proxy.port)
        with pytest.raises(LatitudeError) as info:
            client_for("https://api.example.test").request(method, PATH, None if method == "GET" else {"data": {}})
    finally:
        proxy.close()
    message = info.value.message
    assert "proxy" in message and "HTTPS_PROXY" in message and "NO_PROXY" in message, message
    assert "pr0xypw" not in message and "may have been applied" not in message
    assert info.value.maybe_applied is False
    assert TOKEN.encode() not in proxy.connects[0]


# --------------------------------------------------------------------------- answers that are not what they seem


def outcome_of(answer, method="GET", body=None):
    """What one request gets from a server that sends ``answer``: the decoded document, or the LatitudeError raised."""
    server = Server([answer])
    try:
        return client_for("http://127.0.0.1:%d" % server.port).request(method, PATH, body)
    except LatitudeError as err:
        return err
    finally:
        server.close()


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "GET"])
@pytest.mark.parametrize("interim", [b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
                                     b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n"])
def test_interim_answers_are_skipped_and_the_final_one_counts(clean_env, method, interim):
    # Before: the 103 was taken as the answer, so a PATCH or DELETE the API refused read as done.
    refused = b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 2\r\n\r\n{}"
    err = outcome_of(interim + refused, method, {"data": {}} if method == "PATCH" else None)
    assert isinstance(err, LatitudeError) and err.status == 422, err


def test_an_interim_answer_before_a_success_gives_the_success(clean_env):
    assert outcome_of(b"HTTP/1.1 103 Early Hints\r\n\r\n" + ok()) == DOC


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_final_101_answer_is_an_error_not_a_success(clean_env, method):
    err = outcome_of(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", method,
                     {"data": {}} if method == "POST" else None)
    assert isinstance(err, LatitudeError) and err.status == 101, err
    # The request reached the server: a write may have been applied.
    assert err.maybe_applied is (method != "GET"), err.message


@pytest.mark.parametrize("status, charset", [(200, "idna"), (404, "undefined"), (500, "undefined"), (200, "rot13")])
def test_a_charset_that_is_no_text_codec_is_read_as_utf8(clean_env, status, charset):
    # Before: UnicodeError (a traceback) from decoding the body.
    body = json.dumps(DOC).encode()
    outcome = outcome_of((b"HTTP/1.1 %d X\r\nContent-Type: application/vnd.api+json; charset=%s\r\nContent-Length: %d\r\n\r\n"
                          % (status, charset.encode(), len(body))) + body)
    if status == 200:
        assert outcome == DOC
    else:
        assert isinstance(outcome, LatitudeError) and outcome.status == status, outcome


def test_bytes_left_over_in_the_tls_session_never_answer_the_next_request(clean_env, monkeypatch, certificate):
    # The first answer comes with a forged second one in the same TLS record, beyond what http.client reads ahead:
    # the client must not take it for the answer to its create (the real answer holds the real token).
    listing = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"data\": []}"
    forged_body = b'{"data": {"id": "tok_FORGED", "attributes": {"token": "forged"}}}'
    forged = b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(forged_body) + forged_body
    real = {"data": {"id": "tok_REAL", "attributes": {"token": "real"}}}
    server = Server([listing + b"x" * (8192 - len(listing)) + forged, ok(real)], tls=certificate)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
        client = client_for("https://127.0.0.1:%d" % server.port)
        assert client.get(PATH) == {"data": []}
        time.sleep(0.1)
        assert client.post(PATH, {"data": {}}) == real
    finally:
        server.close()
    assert [len(connection) for connection in server.connections] == [1, 1]


class ClosesFirstHandshake(Listener):
    """An https server on 127.0.0.1 that closes its first connection after the ClientHello (a busy load balancer)."""

    def __init__(self, certificate):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*certificate)
        self.accepted, self.seen = 0, []
        Listener.__init__(self)

    def handle(self, conn):
        self.accepted += 1
        conn.settimeout(5)
        try:
            if self.accepted == 1:
                conn.recv(65536)  # the ClientHello, then gone
                return
            tls = self.context.wrap_socket(conn, server_side=True)
            self.seen.append(_read_request(tls))
            tls.sendall(ok())
            time.sleep(0.2)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


@pytest.mark.parametrize("retries", [0, 1])
def test_a_handshake_closed_by_the_server_is_tried_again_and_named_so(clean_env, monkeypatch, certificate, retries):
    # Nothing was sent, so even a create goes again, on a new connection; with no retry left, the message says what
    # happened (before: "TLS verification failed ... fix the certificate", and no retry).
    server = ClosesFirstHandshake(certificate)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
        client = client_for("https://127.0.0.1:%d" % server.port, api_retries=retries)
        if retries:
            assert client.post(PATH, {"data": {}}) == DOC
        else:
            with pytest.raises(LatitudeError) as info:
                client.post(PATH, {"data": {}})
            assert "closed during the TLS handshake" in info.value.message, info.value.message
            assert "certificate" not in info.value.message and info.value.maybe_applied is False
    finally:
        server.close()
    assert [request.split(b" ")[0] for request in server.seen] == ([b"POST"] if retries else []), server.seen


SIGTERMED_CREATE = """
import os, signal, sys, threading
from ansible_collections.latitudesh.cloud.plugins.module_utils._api import LatitudeClient, LatitudeError
client = LatitudeClient(dict(auth_token="t" * 36, api_url=sys.argv[1], api_timeout=30, api_retries=0,
                             validate_certs=True))
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
try:
    client.post("/auth/api_keys", {"data": {}})
except LatitudeError as err:
    print("maybe_applied=%s %s" % (err.maybe_applied, err.message))
"""


def test_a_sigterm_while_a_create_waits_for_its_answer_is_a_message_not_a_kill(clean_env, tmp_path):
    # Before: the module died (rc 143), with no word that the key may have been created.
    def never_answers(conn):
        time.sleep(3)
        return False

    server = Server([never_answers])
    script = tmp_path / "sigtermed.py"
    script.write_text(SIGTERMED_CREATE)
    try:
        proc = subprocess.run([sys.executable, str(script), "http://127.0.0.1:%d" % server.port], timeout=60, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "maybe_applied=True" in out and "interrupted (Ctrl-C or SIGTERM)" in out, out
    assert "may have been applied" in out and len(server.requests) == 1, out
