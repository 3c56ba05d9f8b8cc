# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Find API tokens where they must not be: in logs, playbook output and files a run wrote.

Standard library only. The secrets are every token in one or more token journals (the sandbox's
``--token-journal``: one token per line). Two places may hold a token:

* a token file: a file whose name ends in ``.token`` under a directory given as an allowed
  token-file directory (the ``team_api_keys`` role writes ``<dir>/<team>/<key>.token``);
* a module result's ``"token": "<value>"`` member, the one sanctioned return of a new token.

Every other occurrence is a leak. As a program::

    python tests/functional/leakscan.py --journal FILE [--journal FILE ...]
        [--allow-token-files DIR ...] PATH...

scans the files and directories (recursively) and prints ``file:line: token ****abcd`` for each
leak, with the token masked to its last 4 characters; the exit code is 1 when something leaked,
2 on a usage error (for example an empty journal), 0 otherwise. The journals themselves are
never scanned.
"""

import argparse
import os
import re
import sys

# Shorter strings would match by chance; the API's tokens are 36 characters.
MIN_SECRET_LENGTH = 8
TOKEN_FILE_SUFFIX = ".token"
# The sanctioned form: a JSON member named "token" whose whole string value is the secret.
_SANCTIONED_BEFORE = re.compile(r'"token"\s*:\s*"$')


class Leak(object):
    """One occurrence of a secret outside the sanctioned places."""

    def __init__(self, source, line, secret):
        self.source = source
        self.line = line
        self.secret = secret

    @property
    def masked(self):
        return mask(self.secret)

    def __str__(self):
        return "%s:%d: token %s" % (self.source, self.line, self.masked)

    def __repr__(self):
        return "Leak(%r, %d, %r)" % (self.source, self.line, self.masked)


def mask(secret):
    """``****`` and the last 4 characters: enough to tell tokens apart, useless to an attacker."""
    return "****" + secret[-4:]


def load_secrets(journals, extra=()):
    """The set of tokens in the journal files (one per line; blank lines ignored) plus ``extra``."""
    secrets = set()
    for path in journals:
        with open(path, encoding="utf-8", errors="replace") as handle:
            secrets.update(line.strip() for line in handle)
    secrets.update(value.strip() for value in extra if value)
    return set(value for value in secrets if len(value) >= MIN_SECRET_LENGTH)


def _sanctioned(line, start, end):
    return _SANCTIONED_BEFORE.search(line[:start]) is not None and line[end:end + 1] == '"'


def scan_text(text, secrets, source="<text>"):
    """Every leak in ``text``: a list of Leak, in line order."""
    leaks = []
    if not text or not secrets:
        return leaks
    pattern = re.compile("|".join(re.escape(value) for value in sorted(secrets, key=len, reverse=True)))
    for number, line in enumerate(text.splitlines(), 1):
        for match in pattern.finditer(line):
            if not _sanctioned(line, match.start(), match.end()):
                leaks.append(Leak(source, number, match.group(0)))
    return leaks


def _under(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def is_allowed_token_file(path, allow_dirs):
    """True for ``*.token`` files under one of ``allow_dirs``."""
    return path.endswith(TOKEN_FILE_SUFFIX) and any(_under(path, directory) for directory in allow_dirs)


def iter_files(paths, exclude=()):
    """Regular files among ``paths`` (directories walked recursively), minus ``exclude``."""
    excluded = set(os.path.realpath(path) for path in exclude)
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if os.path.isfile(full) and not os.path.islink(full) and os.path.realpath(full) not in excluded:
                        yield full
        elif os.path.isfile(path) and os.path.realpath(path) not in excluded:
            yield path


def scan_paths(paths, secrets, allow_token_dirs=(), exclude=()):
    """Every leak in the files under ``paths``; allowed token files are skipped."""
    leaks = []
    for path in iter_files(paths, exclude):
        if is_allowed_token_file(path, allow_token_dirs):
            continue
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        leaks.extend(scan_text(text, secrets, path))
    return leaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--journal", action="append", required=True, metavar="FILE",
                        help="token journal (one token per line); may be repeated")
    parser.add_argument("--allow-token-files", action="append", default=[], metavar="DIR",
                        help="*.token files under DIR may hold tokens; may be repeated")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to scan")
    args = parser.parse_args(argv)
    try:
        secrets = load_secrets(args.journal)
    except OSError as exc:
        parser.error("cannot read a journal: %s" % exc)
    if not secrets:
        parser.error("the journals hold no token of %d characters or more: nothing to look for" % MIN_SECRET_LENGTH)
    files = list(iter_files(args.paths, exclude=args.journal))
    leaks = scan_paths(args.paths, secrets, args.allow_token_files, exclude=args.journal)
    for leak in leaks:
        print(leak)
    print("leakscan: %d secret(s), %d file(s), %d leak(s)" % (len(secrets), len(files), len(leaks)),
          file=sys.stderr)
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
