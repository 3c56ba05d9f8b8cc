# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The transport's bounds, through ansible-playbook (docs/reliability.md, "Transport bounds").

The admin token goes only where ``api_url`` says (no userinfo, no backslash, no proxy for a
loopback http URL), every task ends within its bounds (a dripping answer, a Retry-After that never
ends, a port out of range) and error messages mask every token-like value. The URL, proxy and
drip cases use small TCP listeners of this file's own on 127.0.0.1, which record every byte they
receive; the others use the sandbox.
"""

import json
import re
import secrets
import socket
import threading
import time

import pytest
import yaml

from harness import API, assert_no_traceback, assert_one_paragraph, build_play

INFO = "latitudesh.cloud.api_key_info"
MASK = "********"


class Listener(object):
    """A TCP listener on 127.0.0.1 that records each connection: when it opened and closed, what it received.

    ``reply(conn, stop)`` answers a connection after its first bytes arrive (``stop``: an Event set
    when the test ends); by default a 502 at once.
    """

    def __init__(self, reply=None):
        self.reply = reply or (lambda conn, stop: conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = []  # dicts: opened, closed, data
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept)]
        self._threads[0].start()

    @property
    def received(self):
        return b"".join(entry["data"] for entry in self.connections)

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            entry = {"opened": time.monotonic(), "closed": None, "data": b""}
            self.connections.append(entry)
            thread = threading.Thread(target=self._serve, args=(conn, entry))
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn, entry):
        conn.settimeout(0.5)
        try:
            try:
                entry["data"] += conn.recv(65536)
            except socket.timeout:
                pass
            self.reply(conn, self._stop)
            conn.settimeout(2)
            while True:  # wait for the client to close its side
                chunk = conn.recv(65536)
                if not chunk:
                    break
                entry["data"] += chunk
        except OSError:
            pass
        entry["closed"] = time.monotonic()
        conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()
        for thread in self._threads:
            thread.join(15)


@pytest.fixture
def listeners():
    made = []

    def make(reply=None):
        made.append(Listener(reply))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def play(tasks, api_url, api_timeout=5, api_retries=2):
    return yaml.safe_dump(build_play(tasks, api_url=api_url, api_timeout=api_timeout, api_retries=api_retries))


def failed_case(run):
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    assert_one_paragraph(result, run)
    return result["result"]["msg"]


# --------------------------------------------------------------------------- the token goes only where api_url says


@pytest.mark.badinput
def test_backslash_url_is_refused_and_nothing_is_sent(run_play, listeners):
    # Parsers disagree: urlsplit (which the client connects with) reads host 127.0.0.1:<b>, urllib3 localhost:<a>.
    a, b = listeners(), listeners()
    url = "http://localhost:%d\\@127.0.0.1:%d" % (a.port, b.port)
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], url, api_retries=0))
    msg = failed_case(run)
    assert "api_url" in msg and "backslash" in msg, msg
    assert a.connections == [] and b.connections == [], (a.received, b.received)


@pytest.mark.badinput
def test_userinfo_url_is_refused_nothing_is_sent_and_the_password_is_not_echoed(run_play, listeners):
    target = listeners()
    url = "http://user:s3cretpw@127.0.0.1:%d" % target.port
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], url, api_retries=0))
    msg = failed_case(run)
    assert "user name or password" in msg and "api_url" in msg, msg
    assert "s3cretpw" not in msg
    assert target.connections == [], target.received


@pytest.mark.leak
@pytest.mark.parametrize("url", ["http://user:s3cretpw@127.0.0.1:%d", "https://user:s3cretpw@127.0.0.1:%d",
                                 "http://127.0.0.1:%d\\@user:s3cretpw@localhost:1"], ids=["http", "https", "backslash"])
def test_a_password_in_api_url_is_not_shown_even_at_vvv(run_play, listeners, url):
    # The module arguments are shown at -vvv (and recorded by callbacks): a refused URL's password with them.
    target = listeners()
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], url % target.port, api_retries=0),
                   verbosity=3)
    msg = failed_case(run)
    assert "api_url" in msg, msg
    assert "s3cretpw" not in run.text and "s3cretpw" not in json.dumps(run.results), "the password is in the output"
    assert target.connections == [], target.received


@pytest.mark.fault
def test_a_loopback_http_url_never_goes_through_the_proxy(run_play, listeners, control):
    proxy = listeners()
    proxy_url = "http://127.0.0.1:%d" % proxy.port
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
    env = dict((name, proxy_url) for name in names)
    env.update(NO_PROXY=None, no_proxy=None)
    run = run_play([{"name": "case", INFO: {}}], extra_env=env)
    assert_no_traceback(run)
    assert run.task("case")["status"] == "ok", run.describe()
    assert proxy.connections == [], proxy.received
    assert [(entry["method"], entry["status"]) for entry in control.log()] == [("GET", 200)]


@pytest.mark.badinput
@pytest.mark.parametrize("port", [99999, 65536, 0])
def test_a_port_out_of_range_is_refused_at_once(run_play, control, port):
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], "http://127.0.0.1:%d" % port))
    msg = failed_case(run)
    assert "api_url" in msg and "65535" in msg, msg
    assert run.duration < 15, "took %.1f s: the URL was tried instead of refused" % run.duration


@pytest.mark.fault
def test_a_redirect_is_never_followed(run_play, listeners):
    # A 307 keeps the method and body: followed, it would take the request to another port (or host).
    other = listeners()

    def redirect(conn, stop):
        conn.sendall(("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/auth/api_keys\r\n"
                      "Content-Length: 0\r\n\r\n" % other.port).encode())

    origin = listeners(redirect)
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], "http://127.0.0.1:%d" % origin.port))
    msg = failed_case(run)
    assert "HTTP 307" in msg and "redirect" in msg and "api_url" in msg and "127.0.0.1:%d" % other.port in msg, msg
    assert other.connections == [], other.received
    assert len(origin.connections) == 1, origin.received  # a redirect is not retried either


@pytest.mark.badinput
@pytest.mark.parametrize("token", ["t\u00f6k\u20acn-0123456789", "abc\ndef0123456789"], ids=["non-ascii", "newline"])
def test_a_token_no_http_header_can_carry_is_refused_before_any_request(run_play, control, token):
    run = run_play([{"name": "case", INFO: {}, "ignore_errors": True}], extra_env={"LATITUDESH_AUTH_TOKEN": token})
    msg = failed_case(run)
    assert "auth_token" in msg and "non-ASCII" in msg, msg
    assert "0123456789" not in run.text
    assert control.log() == []


@pytest.mark.fault
@pytest.mark.parametrize("status", [200, 500])
def test_json_nested_too_deep_is_an_error_not_a_traceback(run_play, control, status):
    deep = "[" * 100000 + "]" * 100000
    control.fault(method="GET", path=API, kind="status", status=status, body=deep)
    run = run_play([{"name": "case", INFO: {}, "ignore_errors": True}], api_retries=0)
    msg = failed_case(run)
    assert "HTTP %d" % status in msg and ("not valid JSON" in msg or "non-JSON" in msg), msg
    assert [entry["status"] for entry in control.log()] == [status]


# --------------------------------------------------------------------------- every task ends within its bounds


def dripping(head_first):
    """A reply that sends its answer one byte every 0.25 s, for at most 10 s."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 4000\r\n\r\n"

    def reply(conn, stop):
        data = head if not head_first else b""
        if head_first:
            conn.sendall(head)
        for byte in (data + b" " * 4000)[:40]:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.25)
    return reply


@pytest.mark.fault
@pytest.mark.parametrize("head_first", [True, False], ids=["dripping-body", "dripping-status-line"])
def test_a_dripping_answer_fails_within_api_timeout_per_attempt(run_play, listeners, head_first):
    server = listeners(dripping(head_first))
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], "http://127.0.0.1:%d" % server.port,
                        api_timeout=1, api_retries=1))
    msg = failed_case(run)
    assert "no answer within api_timeout=1 s (the whole answer" in msg, msg
    deadline = time.monotonic() + 5
    while any(entry["closed"] is None for entry in server.connections) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Two attempts (a GET is sent again once), each ended within api_timeout + 1 s.
    assert len(server.connections) == 2, server.connections
    lifetimes = [entry["closed"] - entry["opened"] for entry in server.connections]
    assert all(lifetime < 2.0 for lifetime in lifetimes), lifetimes


@pytest.mark.fault
def test_a_server_that_never_answers_ends_the_task_within_its_time_budget(run_play, listeners):
    # api_timeout=1, api_retries=5: six 1 s attempts and up to 31 s of backoff, but the task's budget is
    # (5 + 3) x 1 = 8 s in all.
    server = listeners(lambda conn, stop: stop.wait(30))
    started = time.monotonic()
    run = run_play(play([{"name": "case", INFO: {}, "ignore_errors": True}], "http://127.0.0.1:%d" % server.port,
                        api_timeout=1, api_retries=5))
    msg = failed_case(run)
    assert "time budget of 8 s" in msg and "(5 + 3) x 1" in msg, msg
    assert time.monotonic() - started < 8 + 6, "the whole playbook (start-up included) ends soon after 8 s"
    assert 2 <= len(server.connections) <= 6, server.connections


SLOW_LOOKUP = """import socket, time
_getaddrinfo = socket.getaddrinfo
def _slow(host, *args, **kwargs):
    if host == "localhost":  # a name server that does not answer for 3 s
        time.sleep(3)
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = _slow
"""


@pytest.mark.fault
def test_a_name_lookup_that_hangs_ends_the_attempt_within_api_timeout(run_play, listeners, tmp_path):
    # The module's Python loads sitecustomize.py from PYTHONPATH: there, looking up localhost takes 3 s.
    (tmp_path / "sitecustomize.py").write_text(SLOW_LOOKUP)
    server = listeners()
    tasks = [{"name": "case", "latitudesh.cloud.api_key": {"name": "ci-deployer"}, "ignore_errors": True}]
    run = run_play(play(tasks, "http://localhost:%d" % server.port, api_timeout=1, api_retries=0),
                   extra_env={"PYTHONPATH": str(tmp_path)})
    msg = failed_case(run)
    assert "could not connect to localhost within api_timeout=1 s (name lookup" in msg, msg
    assert "nothing was sent" in msg and "may have been applied" not in msg, msg
    # api_timeout (1 s) and the module's start-up, well before the 3 s lookup ends.
    assert run.task("case")["duration"] < 3, run.task("case")
    time.sleep(2.5)  # the abandoned lookup has ended by now: the create was still never sent
    assert server.received == b"", server.received


@pytest.mark.ratelimit
def test_retry_after_20_for_ever_ends_within_the_documented_cap(run_play, control):
    # api_timeout=1, api_retries=3: a task waits at most 3 x 1 / 2 = 1.5 s for rate limits in all.
    control.fault(method="GET", path=API, kind="status", status=429, retry_after_header=20, times=10)
    run = run_play([{"name": "case", INFO: {}, "ignore_errors": True}], api_timeout=1, api_retries=3)
    msg = failed_case(run)
    assert "asked to wait 20 s" in msg and "api_retries x api_timeout / 2" in msg, msg
    assert [entry["status"] for entry in control.log()] == [429]
    assert run.duration < 15, run.duration


@pytest.mark.ratelimit
@pytest.mark.parametrize("value", ["-5", "nan", "inf", "soon"])
def test_an_invalid_retry_after_backs_off(run_play, control, value):
    control.fault(method="GET", path=API, kind="status", status=429, retry_after_header=value, times=2)
    run = run_play([{"name": "case", INFO: {}}], api_retries=3)
    assert_no_traceback(run)
    assert run.task("case")["status"] == "ok", run.describe()
    log = control.log()
    assert [entry["status"] for entry in log] == [429, 429, 200]
    gaps = [later["ts"] - entry["ts"] for entry, later in zip(log, log[1:])]
    # The jittered backoff: between half and all of 1 s, then of 2 s (+10 % for the run).
    assert 0.5 <= gaps[0] <= 1.1 and 1.0 <= gaps[1] <= 2.2, gaps


@pytest.mark.ratelimit
@pytest.mark.parametrize("value", [-5, "nan"])
def test_an_invalid_meta_retry_after_backs_off(run_play, control, value):
    control.fault(method="GET", path=API, kind="status", status=429, retry_after=value)
    run = run_play([{"name": "case", INFO: {}}])
    assert run.task("case")["status"] == "ok", run.describe()
    log = control.log()
    gap = log[1]["ts"] - log[0]["ts"]
    assert 0.5 <= gap <= 1.1, gap


# --------------------------------------------------------------------------- secrets in messages


FORMS = {
    "html-quoting-escaped-json": '<html><body><pre>{\\"token\\":\\"%s\\"}</pre></body></html>',
    "python-repr": "<html><body>{'token': '%s'}</body></html>",
    "query-string": "<html><body>token=%s</body></html>",
    "json": '{"id": "tok_1", "token": "%s"}',
    "hex-run": "upstream answered %s",
}


@pytest.mark.leak
def test_error_messages_mask_every_token_form(run_play, control, admin_token):
    secrets_by_case = {}
    tasks = []
    for form in sorted(FORMS) + ["admin-token"]:
        secret = secrets.token_hex(18)
        if form == "admin-token":
            secret, body = admin_token(), "<html><body>key %s is throttled</body></html>" % admin_token()
        else:
            body = FORMS[form] % (secret if form == "hex-run" else "Zq-" + secret)
        secrets_by_case[form] = secret
        control.fault(method="GET", path=API, kind="status", status=500, body=body, content_type="text/html")
        tasks.append({"name": form, INFO: {}, "ignore_errors": True})
    run = run_play(tasks, api_retries=0)
    assert_no_traceback(run)
    for form, secret in secrets_by_case.items():
        result = run.task(form)
        assert result["status"] == "failed", run.describe()
        msg = result["result"]["msg"]
        assert "HTTP 500" in msg and MASK in msg, msg
        assert secret not in msg and secret[:16] not in msg, (form, msg)
        assert secret not in run.text
    assert len(control.log()) == len(secrets_by_case)


@pytest.mark.leak
@pytest.mark.parametrize("status, content_type, body", [
    (422, "text/plain", "name taken; issued QUOTED-%s"),
    (500, "text/html", "<html><body>partial: QUOTED-%s</body></html>"),
])
def test_the_answer_to_a_create_is_never_quoted(run_play, control, status, content_type, body):
    secret = secrets.token_hex(18)
    control.fault(method="POST", path=API, kind="status", status=status, body=body % secret, content_type=content_type)
    run = run_play([{"name": "case", "latitudesh.cloud.api_key": {"name": "never-quoted"}, "ignore_errors": True}])
    msg = failed_case(run)
    assert "HTTP %d" % status in msg and "not quoted" in msg, msg
    assert "QUOTED" not in msg and secret not in run.text
    assert re.search(r"POST /auth/api_keys", msg), msg
