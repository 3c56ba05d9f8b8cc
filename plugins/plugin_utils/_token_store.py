# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Token files on the controller: path checks, the directory lock, atomic writes and the issue record.

Used by the ``api_key`` action plugin (which writes and removes token files) and by the role's
filters (which check declared names before any request). Imports nothing that speaks HTTP.
Private to the collection: the names here may change without notice.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import signal
import stat
import tempfile
import time
import unicodedata

RESERVED_PREFIX = ".latitudesh"
LOCK_NAME = ".latitudesh.lock"
MANIFEST_NAME = ".latitudesh-tokens.json"
TOKEN_SUFFIX = ".token"
NAME_MAX = 255  # bytes in one path component, on every file system Ansible runs on
PATH_MAX = 4095
LOCK_WAIT = 600.0  # seconds; a holder finishes one api_key task, which is bounded by its own timeouts
PROBE_SIZE = 4096  # larger than any token file, Vault-encrypted or not


class TokenStoreError(Exception):
    """A token file cannot be checked, locked, written or removed; the message names the path."""


def _is_control(char):
    """C0 and C1 control characters and DEL (U+0085 is a line break to Python and many log viewers)."""
    code = ord(char)
    return code < 32 or 127 <= code < 160


# Characters that make a name display as something it is not: line and paragraph separators, the
# bidirectional controls (a different order of characters, a broken line), and the invisible ones, which
# make two different names look the same ("ci-deployer" and "ci-deployer" + U+200B would be two token files
# that `ls` shows alike). _deceptive() refuses every format character (Unicode category Cf: zero width
# space, word joiner, byte order mark, soft hyphen, invisible operators, tags ...), every space but
# U+0020, and the letters and marks below that show as nothing or as a space. (Unassigned code points
# are not refused: which ones are depends on the controller's Python, and a new emoji would be.)
# The zero width joiner and non-joiner and the variation selectors are allowed where scripts and emoji
# need them, after a non-ASCII character (and, for the joiners, before one); next to ASCII or at either
# end of a name they only hide.
DECEPTIVE = frozenset(u"\u2028\u2029\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                      u"\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u115f\u1160\u3164\uffa0"
                      u"\u2800\u034f\u17b4\u17b5\u2065")
DECEPTIVE_KINDS = "a line separator, bidirectional control or invisible character"
JOINERS = frozenset(u"\u200c\u200d")


def is_selector(char):
    """A variation selector (emoji, CJK) or a Mongolian free variation selector."""
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or code in (0x180B, 0x180C, 0x180D, 0x180F)


def _hides(text, index):
    """True when the character at ``index`` of ``text`` makes it display as something it is not."""
    char = text[index]
    if char in DECEPTIVE:
        return True
    if char in JOINERS or is_selector(char):
        before = text[index - 1] if index else u""
        after = text[index + 1] if index + 1 < len(text) else u""
        if not before or ord(before) < 128 or before in JOINERS or (is_selector(before) and is_selector(char)):
            return True
        return char in JOINERS and (not after or ord(after) < 128 or after in JOINERS or is_selector(after))
    category = unicodedata.category(char)
    return category in ("Cf", "Zl", "Zp") or (category == "Zs" and char != u" ")


def _deceptive(text):
    """The first character of ``text`` that hides (see DECEPTIVE), as ``U+`` and its hex digits (``U+202E``), or None."""
    found = next((char for index, char in enumerate(text) if _hides(text, index)), None)
    return None if found is None else "U+%04X" % ord(found)


def display_problem(text):
    """Why ``text`` (a path) shows in a terminal or a log as something it is not, or None."""
    if any(_is_control(char) for char in text):
        return "contains a control character (such as a newline or a tab)"
    if _deceptive(text):
        return "contains %s, %s that makes it display as something it is not" % (_deceptive(text), DECEPTIVE_KINDS)
    return None


def name_problem(name):
    """Why ``name`` cannot be one path component (a file or directory name), or None."""
    if not isinstance(name, str) or name == "":
        return "is empty"
    if "\x00" in name:
        return "contains a NUL character"
    if any(_is_control(char) for char in name):
        return "contains a control character (such as a newline or a tab)"
    if _deceptive(name):
        return "contains %s, %s that makes the name display as something it is not" % (
            _deceptive(name), DECEPTIVE_KINDS)
    if "/" in name:
        return "contains '/'"
    if name in (".", ".."):
        return "is %r, which always means the current or the parent directory" % name
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > NAME_MAX:
        return "is %d bytes long in UTF-8; a file name may have at most %d bytes" % (size, NAME_MAX)
    return None


def path_problem(path):
    """Why ``path`` cannot be a token file's path, judged from the string alone; None when it can."""
    if not isinstance(path, str) or not path.strip():
        return "token_path must be a non-empty path to a file"
    if "\x00" in path:
        return "token_path contains a NUL character"
    if any(_is_control(char) for char in path):
        return "token_path contains a control character (such as a newline or a tab)"
    if _deceptive(path):
        return "token_path contains %s, %s that makes the path display as something it is not" % (
            _deceptive(path), DECEPTIVE_KINDS)
    if path.endswith("/"):
        return "token_path %s ends with '/': give the path of a file, not of a directory" % path
    if len(path.encode("utf-8", "surrogatepass")) > PATH_MAX:
        return "token_path is longer than %d bytes" % PATH_MAX
    for part in path.split("/"):
        if part:
            size = len(part.encode("utf-8", "surrogatepass"))
            if size > NAME_MAX:
                return "token_path has a component of %d bytes (%s...); a file or directory name may have at most " \
                       "%d bytes" % (size, part[:24], NAME_MAX)
    if os.path.basename(path) in (".", ".."):
        return "token_path %s names a directory, not a file" % path
    if os.path.basename(path) in (LOCK_NAME, MANIFEST_NAME) or os.path.basename(path).startswith(RESERVED_PREFIX):
        return "token_path %s names a file the collection keeps beside token files (%s*); choose another file name" % (
            path, RESERVED_PREFIX)
    return None


def nearest_existing(directory):
    """``directory`` or its nearest ancestor that exists (as any kind of file)."""
    while not os.path.lexists(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def _reason(exc):
    return exc.strerror or errno.errorcode.get(exc.errno, str(exc))


def check_destination(path, create):
    """Check that ``path`` (absolute) can be written; with ``create``, make its directory (0700) and probe it.

    Raises TokenStoreError with the reason. Without ``create`` (check mode) nothing is written.
    """
    directory = os.path.dirname(path)
    if os.path.isdir(path) and not os.path.islink(path):
        raise TokenStoreError("token_path %s is a directory; give the path of the token file in it" % path)
    if os.path.lexists(path) and not (os.path.islink(path) or stat.S_ISREG(os.lstat(path).st_mode)):
        raise TokenStoreError("token_path %s exists and is not a regular file (a device, a FIFO or a socket); "
                              "give the path of a token file" % path)
    existing = nearest_existing(directory)
    if not os.path.isdir(existing):
        raise TokenStoreError(
            "the directory of token_path %s cannot be created: %s exists and is not a directory" % (path, existing))
    if existing == directory:
        problem = shared_directory_problem(directory)
        if problem:
            raise TokenStoreError("the directory of token_path %s %s" % (path, problem))
    if not create:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise TokenStoreError("the directory %s is not writable, so token_path %s could not be written" % (
                existing, path))
        return
    try:
        make_private_dirs(directory)
    except OSError as exc:
        raise TokenStoreError("the directory of token_path %s cannot be created: %s" % (path, _reason(exc)))
    probe = None
    try:
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".latitudesh-probe-")
        with os.fdopen(handle, "wb") as stream:
            stream.write(b"\0" * PROBE_SIZE)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        raise TokenStoreError("the directory %s cannot hold token_path %s: %s" % (directory, path, _reason(exc)))
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


def shared_directory_problem(directory):
    """Why other users could tamper with token files in ``directory`` (writable by them, owned by another), or None."""
    info = os.stat(directory)
    if info.st_uid not in (os.geteuid(), 0):
        return "%s is owned by another user (uid %d), who could replace or delete token files in it; use a " \
               "directory of your own" % (directory, info.st_uid)
    if info.st_mode & 0o022:
        return "%s is writable by other users (mode %04o), who could replace or delete token files or hold its " \
               "lock; use a private directory (chmod 0700) or a new one, which the collection creates 0700" % (
                   directory, stat.S_IMODE(info.st_mode))
    return None


def make_private_dirs(directory):
    """Create ``directory`` and missing parents with mode 0700 (existing ones are left as they are)."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
        else:
            os.chmod(path, 0o700)  # the umask may have taken bits away, never added: make it exact


class DirectoryLock(object):
    """An exclusive ``flock`` on ``<directory>/.latitudesh.lock``, waited for up to ``wait`` seconds.

    The kernel releases it when the holder exits, however it exits; the file itself stays.
    """

    def __init__(self, directory, wait=None, sleep=time.sleep, clock=time.monotonic):
        self.path = os.path.join(directory, LOCK_NAME)
        self.wait = LOCK_WAIT if wait is None else wait
        self._sleep = sleep
        self._clock = clock
        self._fd = None

    def __enter__(self):
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise TokenStoreError("cannot open the lock file %s: %s" % (self.path, _reason(exc)))
        deadline = self._clock() + self.wait
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    self._close()
                    raise TokenStoreError("cannot lock %s: %s" % (self.path, _reason(exc)))
                if self._clock() >= deadline:
                    holder = self._holder()
                    self._close()
                    raise TokenStoreError(
                        "another run (%s) has held the lock %s for more than %g s; nothing was sent. Wait for it "
                        "to finish, or stop it, then run the task again" % (holder, self.path, self.wait))
                self._sleep(0.1)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.write(self._fd, ("%d\n" % os.getpid()).encode("ascii"))
        return self

    def _holder(self):
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            pid = os.read(self._fd, 32).decode("ascii", "replace").strip()
        except OSError:
            pid = ""
        return "process %s" % pid if pid.isdigit() else "another process"

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc_info):
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._close()


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGALRM)):
    """Hold SIGINT, SIGTERM and SIGALRM (a task timeout) back while a received token is being written; deliver the
    first one afterwards. Yields the list of the signals held back so far.

    Signal handlers can only be changed in the main thread; elsewhere this does nothing.
    """
    received = []
    previous = {}
    try:
        for number in signals:
            previous[number] = signal.signal(number, lambda signum, _frame: received.append(signum))
    except ValueError:  # not the main thread
        for number, handler in previous.items():
            signal.signal(number, handler)
        previous = {}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in received[:1]:
            os.kill(os.getpid(), number)


def _write_atomic(path, data):
    """Write ``data`` to a temporary file beside ``path`` (0600), flush it to disk, rename it over ``path``."""
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".latitudesh-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)  # replaces a symlink at path, never writes through it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)


def _sync_directory(directory):
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def write_token_file(path, data):
    """Write a token file atomically; raise TokenStoreError with the reason (never the content)."""
    try:
        _write_atomic(path, data)
    except OSError as exc:
        raise TokenStoreError(_reason(exc))


def remove_token_file(path):
    """Remove the token file at ``path``; True when one was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise TokenStoreError("cannot remove the token file %s: %s" % (path, _reason(exc)))
    _sync_directory(os.path.dirname(path))
    return True


def move_token_file(directory, old_name, new_name, entry):
    """Move a token file within ``directory`` (its key was renamed) and its record with it (as ``entry``).

    Call it while holding the lock. The new name is recorded first, so a crash at any point leaves the
    token in a file that the record ties to its key.
    """
    source, target = os.path.join(directory, old_name), os.path.join(directory, new_name)
    if os.path.lexists(target):
        raise TokenStoreError("%s already exists" % target)
    update_manifest(directory, new_name, entry)
    try:
        os.rename(source, target)
    except OSError as exc:
        with contextlib.suppress(TokenStoreError):
            update_manifest(directory, new_name, None)
        raise TokenStoreError("cannot move %s to %s: %s" % (source, target, _reason(exc)))
    _sync_directory(directory)
    update_manifest(directory, old_name, None)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def read_manifest(directory):
    """The issue record of a token directory: ``{file name: {id, name, token_last_slice, issued_at}}``."""
    try:
        # Non-blocking, and a regular file only (a link to one is read): opening a FIFO would wait for a writer.
        handle = os.open(os.path.join(directory, MANIFEST_NAME), os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        with os.fdopen(handle, encoding="utf-8") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                return {}
            doc = json.load(stream)
    except (OSError, ValueError):
        return {}
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(tokens, dict):
        return {}
    return dict((name, entry) for name, entry in tokens.items() if isinstance(entry, dict))


def update_manifest(directory, file_name, entry):
    """Record (``entry``) or forget (None) the token in ``file_name``; call it while holding the lock."""
    tokens = read_manifest(directory)
    if entry is None:
        if file_name not in tokens:
            return
        tokens.pop(file_name)
    else:
        tokens[file_name] = entry
    text = json.dumps({"version": 1, "tokens": tokens}, indent=2, sort_keys=True) + "\n"
    try:
        _write_atomic(os.path.join(directory, MANIFEST_NAME), text.encode("utf-8"))
    except OSError as exc:
        raise TokenStoreError(_reason(exc))
