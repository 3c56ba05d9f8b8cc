# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo`: build and install the collection, start the sandbox with two teams, run the demo
playbook twice (the second run must report changed=0), list the token files, stop the sandbox.

Run with the virtualenv's Python: the Ansible commands are taken from beside sys.executable.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
WORK = os.path.join(ROOT, ".tmp", "demo")

sys.path[:0] = [os.path.join(ROOT, "tests", "sandbox"), os.path.join(ROOT, "tests", "ci")]
import collection  # noqa: E402  pylint: disable=wrong-import-position
import latitude_sandbox  # noqa: E402  pylint: disable=wrong-import-position


def run(args, **kwargs):
    print("$ " + " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in args), flush=True)
    return subprocess.run(args, check=True, **kwargs)


def main():
    os.makedirs(WORK, exist_ok=True)
    print("$ python tests/ci/collection.py --output %s --install %s" % (
        os.path.relpath(os.path.join(WORK, "dist"), ROOT), os.path.relpath(os.path.join(WORK, "collections"), ROOT)),
        flush=True)
    try:
        collections = collection.build_and_install(WORK)
    except collection.BuildError as error:
        sys.exit("demo: %s" % error)

    with tempfile.TemporaryDirectory(prefix="latitudesh-demo-") as tmp:
        try:
            sandbox = latitude_sandbox.SandboxProcess(work_dir=tmp).start()
        except RuntimeError as error:
            sys.exit("demo: %s" % error)
        url = sandbox.url
        try:
            teams = sandbox.control.state()["teams"]
            print("Sandbox at %s with teams %s" % (url, ", ".join(team["name"] for team in teams)), flush=True)
            extra = os.path.join(tmp, "teams.json")
            fd = os.open(extra, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"demo_teams": [{"name": t["name"], "auth_token": t["admin_token"]} for t in teams]}, handle)
            token_dir = os.path.join(WORK, "credentials")
            shutil.rmtree(token_dir, ignore_errors=True)
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, LATITUDESH_API_URL=url,
                       DEMO_TOKEN_DIR=token_dir, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
            env.pop("LATITUDESH_AUTH_TOKEN", None)
            playbook = os.path.join(collections, "ansible_collections", "latitudesh", "cloud", "playbooks", "demo.yml")
            recap = []
            for label in ("first run: provisions", "second run: nothing to change"):
                print("\n=== %s ===" % label, flush=True)
                out = run([os.path.join(BIN, "ansible-playbook"), "-e", "@" + extra, playbook],
                          env=env, stdout=subprocess.PIPE, text=True).stdout
                print(out, flush=True)
                recap.append(re.search(r"localhost\s*:.*", out).group(0))
            if not re.search(r"changed=0\b", recap[1]):
                sys.exit("demo: the second run changed something: " + recap[1])
            print("=== token files (written only for keys created in the first run) ===")
            for folder, _dirs, files in sorted(os.walk(token_dir)):
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    mode = stat.S_IMODE(os.stat(path).st_mode)
                    print("%s  %s" % (oct(mode)[2:], os.path.relpath(path, ROOT)))
            print("\nThe second run reported: " + recap[1])
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
