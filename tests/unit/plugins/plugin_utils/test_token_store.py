# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the controller-side token store: path checks, the directory lock, atomic writes."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from ansible_collections.latitudesh.cloud.plugins.plugin_utils import _token_store
from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import (
    LOCK_NAME,
    MANIFEST_NAME,
    DirectoryLock,
    TokenStoreError,
    check_destination,
    make_private_dirs,
    name_problem,
    path_problem,
    read_manifest,
    remove_token_file,
    signals_deferred,
    update_manifest,
    write_token_file,
)

TOKEN = b"54ebfcfa2ad7f9fe0d4e081306554174d063"


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one is restored afterwards."""
    saved = []

    def set_umask(value):
        previous = os.umask(value)
        if not saved:
            saved.append(previous)

    yield set_umask
    if saved:
        os.umask(saved[0])


# --------------------------------------------------------------------------- name_problem


@pytest.mark.parametrize("name", ["ci-deployer", "a", "x" * 255, u"\u00e9" * 127, "with space", "a.b", "-x-"])
def test_name_problem_accepts_plain_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name, reason", [
    ("", "is empty"),
    (None, "is empty"),
    ("a\x00b", "contains a NUL character"),
    ("a\nb", "control character"),
    ("a\tb", "control character"),
    ("a\rb", "control character"),
    ("a\x1bb", "control character"),
    ("a\x7fb", "control character"),
    ("a/b", "contains '/'"),
    ("/", "contains '/'"),
    (".", "current or the parent directory"),
    ("..", "current or the parent directory"),
    ("x" * 256, "is 256 bytes long in UTF-8; a file name may have at most 255 bytes"),
    (u"\u00e9" * 128, "is 256 bytes long in UTF-8"),
    (u"\u00e9" * 150, "is 300 bytes long in UTF-8"),
])
def test_name_problem_refuses(name, reason):
    problem = name_problem(name)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("char", [u"\u2028", u"\u2029", u"\u202e", u"\u2066", u"\u200f", u"\u061c"])
def test_name_and_path_problem_refuse_line_separators_and_bidirectional_controls(char):
    # "ci\u202etxt.token" shows as "cinekot.txt" in a terminal: a file name that lies about itself.
    expected = "U+%04X" % ord(char)
    assert expected in name_problem(u"ci" + char + "txt")
    assert expected in path_problem(u"/srv/tokens/ci" + char + "txt.token")
    assert expected in path_problem(u"/srv/tok" + char + "ens/ci.token")


@pytest.mark.parametrize("char", [
    u"\u200b", u"\u2060", u"\ufeff", u"\u00ad", u"\u3164", u"\u2062",  # zero width, joiner, BOM, soft hyphen, filler
    u"\u206a", u"\ufff9", u"\U0001d173", u"\U000e0001", u"\U000e0041",  # other format characters (Cf), tags
    u"\u00a0", u"\u2007", u"\u3000", u"\u1680",  # spaces other than U+0020
    u"\u2065",  # reserved among the invisible operators
    u"\u2800", u"\u034f", u"\u17b4", u"\u180b",  # a blank pattern, marks that show as nothing
    u"\u200d", u"\u200c", u"\ufe0f",  # a joiner or a variation selector after ASCII only hides
])
def test_name_and_path_problem_refuse_invisible_characters(char):
    # "ci-deployer" and "ci-deployer" + U+200B are two keys whose token files look the same in ls.
    expected = "U+%04X" % ord(char)
    assert expected in name_problem(u"ci-deployer" + char) and "invisible character" in name_problem(u"ci-deployer" + char)
    assert expected in path_problem(u"/srv/tokens/ci-deployer" + char + ".token")
    assert expected in path_problem(u"/srv/tok" + char + "ens/ci.token")


@pytest.mark.parametrize("name, char", [
    (u"\u200dci", u"\u200d"), (u"\u00e9\u200d", u"\u200d"), (u"\u00e9\u200d\u200d\u00e9", u"\u200d"),
    (u"\u00e9\u200cx", u"\u200c"), (u"\ufe0fx", u"\ufe0f"), (u"\u2764\ufe0f\ufe0f", u"\ufe0f"),
])
def test_name_problem_refuses_joiners_and_selectors_at_an_end_or_beside_ascii(name, char):
    assert "U+%04X" % ord(char) in (name_problem(name) or "")


def test_name_problem_accepts_an_emoji_newer_than_the_controllers_unicode_data():
    # U+1FAE8 (Unicode 15) is unassigned to Python 3.11: refusing unassigned code points would refuse it there only.
    assert name_problem(u"ci-\U0001fae8") is None


@pytest.mark.parametrize("name", [u"caf\u00e9", u"\u0645\u0641\u062a\u0627\u062d", u"\u30ad\u30fc", u"ci-\U0001f511",
                                  u"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a non-joiner
                                  u"\U0001f469\u200d\U0001f4bb", u"\u2764\ufe0f\u200d\U0001f525",  # emoji sequences
                                  u"ci-\u2764\ufe0f", u"\u0928\u094d\u200d\u0928", u"cafe\u0301"])
def test_name_problem_accepts_other_scripts_and_symbols(name):
    assert name_problem(name) is None


def test_name_problem_nul_is_reported_as_nul_not_as_control_character():
    assert name_problem("\x00") == "contains a NUL character"


def test_name_problem_counts_bytes_not_characters():
    # 255 characters, but one of them takes two bytes in UTF-8.
    assert "256 bytes" in name_problem(u"\u00e9" + "x" * 254)
    assert name_problem(u"\u00e9" + "x" * 253) is None


@pytest.mark.parametrize("char", [u"\x85", u"\x9b", u"\x80"])
def test_name_problem_refuses_c1_control_characters(char):
    # U+0080..U+009F are control characters too (Unicode category Cc); U+0085 is a line break for
    # str.splitlines() and many log viewers.
    assert "control character" in (name_problem(u"key" + char + u"name") or "")


# --------------------------------------------------------------------------- path_problem


@pytest.mark.parametrize("path", [
    "/tmp/credentials/prod/ci.token",
    "credentials/ci.token",
    "~/ci.token",
    "/tmp/" + "d" * 255 + "/" + "f" * 255,
    u"/tmp/" + u"\u00e9" * 127 + u"/ci.token",
])
def test_path_problem_accepts(path):
    assert path_problem(path) is None


@pytest.mark.parametrize("path, reason", [
    ("", "non-empty"),
    ("   ", "non-empty"),
    (None, "non-empty"),
    ("/tmp/a\x00b.token", "NUL"),
    ("/tmp/a\nb.token", "control character"),
    ("/tmp/dir\t/b.token", "control character"),
    ("/tmp/credentials/", "ends with '/'"),
    ("/tmp/credentials/.", "names a directory"),
    ("/tmp/credentials/..", "names a directory"),
    ("..", "names a directory"),
    ("/tmp/" + "d" * 256 + "/ci.token", "component of 256 bytes"),
    ("/tmp/" + "f" * 256, "component of 256 bytes"),
    (u"/tmp/" + u"\u00e9" * 128 + u".token", "component of 262 bytes"),
    ("/" + "/".join(["d" * 200] * 21), "longer than 4095 bytes"),
])
def test_path_problem_refuses(path, reason):
    problem = path_problem(path)
    assert problem is not None and reason in problem


def test_path_problem_long_component_message_is_cut():
    problem = path_problem("/tmp/" + "q" * 300)
    assert "q" * 25 not in problem
    assert "at most 255 bytes" in problem


# --------------------------------------------------------------------------- check_destination


def test_check_destination_creates_missing_parents_0700_with_umask_022(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "credentials" / "prod" / "ci.token"
    check_destination(str(path), create=True)
    assert mode_of(str(tmp_path / "credentials")) == 0o700
    assert mode_of(str(tmp_path / "credentials" / "prod")) == 0o700
    assert not path.exists()


@pytest.mark.parametrize("value", [0o077, 0o277, 0o000])
def test_check_destination_directories_are_exactly_0700_whatever_the_umask(tmp_path, umask, value):
    umask(value)
    path = tmp_path / "a" / "b" / "ci.token"
    check_destination(str(path), create=True)
    assert mode_of(str(tmp_path / "a")) == 0o700
    assert mode_of(str(tmp_path / "a" / "b")) == 0o700


def test_check_destination_removes_its_probe_file(tmp_path):
    directory = tmp_path / "prod"
    check_destination(str(directory / "ci.token"), create=True)
    assert os.listdir(str(directory)) == []


def test_check_destination_in_an_existing_directory_leaves_its_mode(tmp_path):
    directory = tmp_path / "prod"
    directory.mkdir()
    os.chmod(str(directory), 0o755)
    (directory / "other.token").write_bytes(b"x")
    check_destination(str(directory / "ci.token"), create=True)
    assert sorted(os.listdir(str(directory))) == ["other.token"]
    assert mode_of(str(directory)) == 0o755


def test_check_destination_existing_token_file_is_fine(tmp_path):
    path = tmp_path / "ci.token"
    path.write_bytes(b"old")
    check_destination(str(path), create=True)
    assert path.read_bytes() == b"old"


def test_check_destination_check_mode_creates_nothing(tmp_path):
    check_destination(str(tmp_path / "credentials" / "prod" / "ci.token"), create=False)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("create", [True, False])
def test_check_destination_file_where_the_directory_should_be(tmp_path, create):
    blocker = tmp_path / "credentials"
    blocker.write_bytes(b"not a directory")
    path = tmp_path / "credentials" / "prod" / "ci.token"
    with pytest.raises(TokenStoreError) as info:
        check_destination(str(path), create=create)
    message = str(info.value)
    assert str(path) in message
    assert "%s exists and is not a directory" % blocker in message
    assert blocker.read_bytes() == b"not a directory"


@pytest.mark.parametrize("create", [True, False])
def test_check_destination_refuses_a_directory_as_the_token_file(tmp_path, create):
    target = tmp_path / "ci.token"
    target.mkdir()
    with pytest.raises(TokenStoreError) as info:
        check_destination(str(target), create=create)
    assert "%s is a directory" % target in str(info.value)


def test_check_destination_reports_a_failed_probe_with_its_reason(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_token_store.os, "fsync", full_disk)
    path = tmp_path / "prod" / "ci.token"
    with pytest.raises(TokenStoreError) as info:
        check_destination(str(path), create=True)
    monkeypatch.setattr(_token_store.os, "fsync", real_fsync)
    assert "No space left on device" in str(info.value)
    assert str(path) in str(info.value)
    assert os.listdir(str(tmp_path / "prod")) == []  # the probe is removed even then


def test_make_private_dirs_leaves_existing_parents_alone(tmp_path, umask):
    umask(0o022)
    os.chmod(str(tmp_path), 0o755)
    make_private_dirs(str(tmp_path / "new"))
    assert mode_of(str(tmp_path)) == 0o755
    assert mode_of(str(tmp_path / "new")) == 0o700


# --------------------------------------------------------------------------- write_token_file


@pytest.mark.parametrize("value", [0o000, 0o022])
def test_write_token_file_is_0600_whatever_the_umask(tmp_path, umask, value):
    umask(value)
    path = tmp_path / "ci.token"
    write_token_file(str(path), TOKEN)
    assert path.read_bytes() == TOKEN
    assert mode_of(str(path)) == 0o600
    assert os.listdir(str(tmp_path)) == ["ci.token"]


def test_write_token_file_replaces_an_existing_file_and_makes_it_0600(tmp_path):
    path = tmp_path / "ci.token"
    path.write_bytes(b"old token")
    os.chmod(str(path), 0o644)
    write_token_file(str(path), TOKEN)
    assert path.read_bytes() == TOKEN
    assert mode_of(str(path)) == 0o600


def test_write_token_file_replaces_a_symlink_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"do not touch")
    os.chmod(str(target), 0o644)
    link = tmp_path / "ci.token"
    link.symlink_to(target)
    write_token_file(str(link), TOKEN)
    assert not link.is_symlink()
    assert link.read_bytes() == TOKEN
    assert target.read_bytes() == b"do not touch"
    assert mode_of(str(target)) == 0o644


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_write_token_file_failure_removes_the_temporary_file_and_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ci.token"
    path.write_bytes(b"old token")
    monkeypatch.setattr(_token_store.os, where, _no_space)
    with pytest.raises(TokenStoreError) as info:
        write_token_file(str(path), TOKEN)
    monkeypatch.undo()
    assert str(info.value) == "No space left on device"
    assert TOKEN.decode() not in str(info.value)
    assert os.listdir(str(tmp_path)) == ["ci.token"]
    assert path.read_bytes() == b"old token"


def test_write_token_file_failure_without_an_old_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_token_store.os, "replace", _no_space)
    with pytest.raises(TokenStoreError):
        write_token_file(str(tmp_path / "ci.token"), TOKEN)
    monkeypatch.undo()
    assert os.listdir(str(tmp_path)) == []


def test_write_token_file_interrupted_removes_the_temporary_file(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt()

    monkeypatch.setattr(_token_store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_token_file(str(tmp_path / "ci.token"), TOKEN)
    monkeypatch.undo()
    assert os.listdir(str(tmp_path)) == []


def test_remove_token_file(tmp_path):
    path = tmp_path / "ci.token"
    path.write_bytes(TOKEN)
    assert remove_token_file(str(path)) is True
    assert not path.exists()
    assert remove_token_file(str(path)) is False


def test_remove_token_file_removes_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    link = tmp_path / "ci.token"
    link.symlink_to(target)
    assert remove_token_file(str(link)) is True
    assert not os.path.lexists(str(link))
    assert target.read_bytes() == b"keep"


def test_remove_token_file_error_names_the_path(tmp_path):
    path = tmp_path / "ci.token"
    path.mkdir()
    with pytest.raises(TokenStoreError) as info:
        remove_token_file(str(path))
    assert "cannot remove the token file %s" % path in str(info.value)


# --------------------------------------------------------------------------- DirectoryLock

HOLDER = r"""
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("token_store", sys.argv[1])
store = importlib.util.module_from_spec(spec)
spec.loader.exec_module(store)
lock = store.DirectoryLock(sys.argv[2], wait=0)
lock.__enter__()
sys.stdout.write("locked\n")
sys.stdout.flush()
sys.stdin.readline()
lock.__exit__(None, None, None)
"""


@pytest.fixture
def holder(tmp_path):
    """Start another process that holds the lock of a directory until it is told to stop (or killed)."""
    processes = []

    def start(directory):
        process = subprocess.Popen([sys.executable, "-c", HOLDER, _token_store.__file__, str(directory)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        processes.append(process)
        assert process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_lock_held_by_another_process_times_out_naming_file_and_pid(tmp_path, holder):
    process = holder(tmp_path)
    lock = DirectoryLock(str(tmp_path), wait=0.3)
    with pytest.raises(TokenStoreError) as info:
        with lock:
            pytest.fail("the lock was granted while another process held it")
    message = str(info.value)
    assert str(tmp_path / LOCK_NAME) in message
    assert "process %d" % process.pid in message
    assert "nothing was sent" in message


def test_lock_is_granted_once_the_holder_releases_it(tmp_path, holder):
    process = holder(tmp_path)
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.wait(10) == 0
    with DirectoryLock(str(tmp_path), wait=2):
        with open(str(tmp_path / LOCK_NAME)) as stream:
            assert stream.read().strip() == str(os.getpid())


def test_lock_is_granted_after_the_holder_process_dies(tmp_path, holder):
    process = holder(tmp_path)
    process.kill()
    process.wait()
    with DirectoryLock(str(tmp_path), wait=2):
        pass


def test_lock_excludes_a_second_holder_and_is_released_on_exit(tmp_path):
    with DirectoryLock(str(tmp_path), wait=0):
        with pytest.raises(TokenStoreError):
            with DirectoryLock(str(tmp_path), wait=0):
                pass
    with DirectoryLock(str(tmp_path), wait=0):
        pass
    assert mode_of(str(tmp_path / LOCK_NAME)) == 0o600


def test_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with DirectoryLock(str(tmp_path), wait=0):
            raise RuntimeError("boom")
    with DirectoryLock(str(tmp_path), wait=0):
        pass


def test_lock_waits_until_the_deadline_then_gives_up(tmp_path, holder):
    holder(tmp_path)
    now = [100.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    with pytest.raises(TokenStoreError) as info:
        with DirectoryLock(str(tmp_path), wait=1.0, sleep=sleep, clock=lambda: now[0]):
            pass
    assert 9 <= len(sleeps) <= 11
    assert "more than 1 s" in str(info.value)


def test_lock_does_not_follow_a_symlinked_lock_file(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (tmp_path / LOCK_NAME).symlink_to(target)
    with pytest.raises(TokenStoreError) as info:
        with DirectoryLock(str(tmp_path), wait=0):
            pass
    assert "cannot open the lock file %s" % (tmp_path / LOCK_NAME) in str(info.value)
    assert target.read_bytes() == b"keep"


# --------------------------------------------------------------------------- signals_deferred


def test_sigint_inside_the_block_is_delivered_after_it():
    events = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            events.append("after kill")
            events.append("still inside")
        events.append("after block")  # never reached: the interrupt is raised on leaving the block
    assert events == ["after kill", "still inside"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_inside_the_block_reaches_the_previous_handler_after_it():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == []
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_task_timeout_alarm_inside_the_block_is_delivered_after_it():
    # Ansible's task timeout is a SIGALRM whose handler raises: it must not cut a token file half-written.
    class TimedOut(BaseException):
        pass

    def on_alarm(signum, frame):
        raise TimedOut()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    events = []
    try:
        with pytest.raises(TimedOut):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGALRM)
                events.append("written")
        assert events == ["written"]
        assert signal.getsignal(signal.SIGALRM) is on_alarm
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_no_signal_no_delivery_and_handlers_restored():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        handler = signal.getsignal(signal.SIGTERM)
        with signals_deferred():
            assert signal.getsignal(signal.SIGTERM) is not handler
        assert signal.getsignal(signal.SIGTERM) is handler
        assert received == []
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_signals_deferred_in_a_thread_is_harmless():
    outcome = []

    def work():
        try:
            with signals_deferred():
                outcome.append("ran")
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcome.append(repr(exc))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcome == ["ran"]


# --------------------------------------------------------------------------- manifest


def test_manifest_missing_is_empty(tmp_path):
    assert read_manifest(str(tmp_path)) == {}


def test_manifest_update_read_and_forget(tmp_path):
    entry = {"id": "tok_1", "name": "ci", "token_last_slice": "d063", "issued_at": "2026-12-06T05:00:00+00:00"}
    update_manifest(str(tmp_path), "ci.token", entry)
    update_manifest(str(tmp_path), "mon.token", dict(entry, id="tok_2", name="mon"))
    assert read_manifest(str(tmp_path)) == {"ci.token": entry, "mon.token": dict(entry, id="tok_2", name="mon")}
    assert mode_of(str(tmp_path / MANIFEST_NAME)) == 0o600
    doc = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert doc["version"] == 1

    update_manifest(str(tmp_path), "ci.token", None)
    assert read_manifest(str(tmp_path)) == {"mon.token": dict(entry, id="tok_2", name="mon")}
    # Forgetting a file that is not recorded changes nothing.
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    update_manifest(str(tmp_path), "gone.token", None)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before


@pytest.mark.parametrize("content", [
    b"{not json",
    b"",
    b"\xff\xfe\x00",
    b"[1, 2]",
    b'"text"',
    b'{"version": 1, "tokens": null}',
    b'{"version": 1, "tokens": {"ci.token": "not a dict", "ok.token": {"id": "tok_1"}}}',
])
def test_manifest_corrupt_is_tolerated(tmp_path, content):
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    expected = {"ok.token": {"id": "tok_1"}} if b"ok.token" in content else {}
    assert read_manifest(str(tmp_path)) == expected
    update_manifest(str(tmp_path), "new.token", {"id": "tok_9"})
    assert read_manifest(str(tmp_path)) == dict(expected, **{"new.token": {"id": "tok_9"}})


@pytest.mark.parametrize("content", [
    b'{"version": 1, "tokens": ["ci.token"]}',
    b'{"version": 1, "tokens": "ci.token"}',
    b'{"version": 1, "tokens": 7}',
])
def test_manifest_with_tokens_of_the_wrong_type_is_tolerated(tmp_path, content):
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    assert read_manifest(str(tmp_path)) == {}
    update_manifest(str(tmp_path), "new.token", {"id": "tok_9"})
    assert read_manifest(str(tmp_path)) == {"new.token": {"id": "tok_9"}}


def test_a_manifest_that_is_a_fifo_is_read_as_empty_at_once_and_replaced(tmp_path):
    # Opening a FIFO for reading waits for a writer: a task would hang holding a new token, deaf to Ctrl-C.
    os.mkfifo(str(tmp_path / MANIFEST_NAME), 0o600)
    box = []
    reader = threading.Thread(target=lambda: box.append(read_manifest(str(tmp_path))))
    reader.daemon = True
    reader.start()
    reader.join(3)
    if reader.is_alive():  # let the blocked reader go before failing
        with open(str(tmp_path / MANIFEST_NAME), "w"):
            pass
        reader.join(3)
        pytest.fail("read_manifest waited on a FIFO")
    assert box == [{}]
    update_manifest(str(tmp_path), "k.token", {"id": "tok_a"})
    assert stat.S_ISREG(os.lstat(str(tmp_path / MANIFEST_NAME)).st_mode)
    assert read_manifest(str(tmp_path)) == {"k.token": {"id": "tok_a"}}


def test_a_manifest_that_is_a_link_to_a_regular_file_is_read(tmp_path):
    # Read as empty, it would let a new token overwrite a file the record ties to another key.
    (tmp_path / "real.json").write_text(json.dumps({"version": 1, "tokens": {"x.token": {"id": "tok_k"}}}))
    os.symlink("real.json", str(tmp_path / MANIFEST_NAME))
    assert read_manifest(str(tmp_path)) == {"x.token": {"id": "tok_k"}}


def test_manifest_write_failure_is_a_token_store_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_token_store.os, "replace", _no_space)
    with pytest.raises(TokenStoreError) as info:
        update_manifest(str(tmp_path), "ci.token", {"id": "tok_1"})
    monkeypatch.undo()
    assert "No space left on device" in str(info.value)
    assert os.listdir(str(tmp_path)) == []


# --------------------------------------------------------------------------- files the store keeps, other users


@pytest.mark.parametrize("name", [".latitudesh.lock", ".latitudesh-tokens.json", ".latitudesh-probe-x", ".latitudesh-1.tmp"])
def test_path_problem_refuses_the_files_the_store_keeps(name):
    problem = path_problem("/srv/credentials/" + name)
    assert problem is not None and "choose another file name" in problem


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))],
                         ids=["fifo", "device"])
def test_check_destination_refuses_a_special_file_at_the_destination(tmp_path, make):
    os.chmod(str(tmp_path), 0o700)
    target = tmp_path / "k.token"
    make(str(target))
    with pytest.raises(TokenStoreError) as excinfo:
        check_destination(str(target), create=True)
    assert "not a regular file" in str(excinfo.value)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_check_destination_refuses_a_directory_other_users_can_write(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), mode)
    with pytest.raises(TokenStoreError) as excinfo:
        check_destination(str(shared / "k.token"), create=True)
    assert "writable by other users" in str(excinfo.value) and str(shared) in str(excinfo.value)
    assert os.listdir(str(shared)) == [], "a probe or lock file was left in the shared directory"


def test_check_destination_refuses_a_directory_owned_by_another_user(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    os.chmod(str(other), 0o755)
    os.chown(str(other), 65534, 65534)
    with pytest.raises(TokenStoreError) as excinfo:
        check_destination(str(other / "k.token"), create=False)
    assert "owned by another user (uid 65534)" in str(excinfo.value)
