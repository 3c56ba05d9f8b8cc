# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Last lines of ``make test``: a line per nox session, then ``N passed, N failed, N skipped``.

Reads nox's ``--report`` JSON and the JUnit files in ``tests/output/junit/<session>/``: a session counts
its test cases, or one when it has none; skipped cases are listed as not run. A session nox skipped
(its Python is missing) is skipped when ``ALLOW_MISSING`` names that Python (``python3.13``, from the
session's ``<name>-<python>`` signature in the report) and that Python indeed does not run; else it failed.
Exit code 1 when anything failed."""

import glob
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def missing(python):
    """True when ``python`` (``python3.13``) cannot be run: the only skip that ALLOW_MISSING excuses."""
    if shutil.which(python) is None:
        return True
    done = subprocess.run([python, "-c", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return done.returncode != 0


def main(report):
    allowed = os.environ.get("ALLOW_MISSING", "").split(",")
    with open(report, encoding="utf-8") as handle:
        sessions = json.load(handle)["sessions"]
    total, not_run = [0, 0, 0], []
    print("\n== summary (JUnit files in tests/output/junit/)")
    for session in sessions:
        name, counts, result = session["name"], [0, 0, 0], session["result"]
        for path in glob.glob(os.path.join(ROOT, "tests", "output", "junit", name, "*.xml")):
            for case in ET.parse(path).iter("testcase"):
                outcome = {child.tag for child in case}
                index = 1 if outcome & {"failure", "error"} else 2 if "skipped" in outcome else 0
                counts[index] += 1
                not_run += ["%s: %s" % (name, case.get("name"))] * (index == 2)
        pythons = [sig[len(name) + 1:] for sig in session.get("signatures", []) if sig.startswith(name + "-")]
        if result == "skipped" and not counts[2] and pythons and "python" + pythons[0] in allowed and missing(
                "python" + pythons[0]):
            counts[2], not_run = 1, not_run + ["%s: %s" % (name, session["reason"])]
        if result != "success" and not counts[1] and not (result == "skipped" and counts[2]):
            counts[1] += 1  # failed outside its test cases, or skipped without leave
        elif result == "success" and not sum(counts):
            counts[0] += 1
        total = [a + b for a, b in zip(total, counts)]
        print("%-8s %-20s %6.0fs  %d passed, %d failed, %d skipped"
              % (result.upper(), name, session["duration"] or 0, counts[0], counts[1], counts[2]))
    if not_run:
        print("did not run (%d, counted as skipped): %s" % (len(not_run), "; ".join(not_run)))
    print("%d passed, %d failed, %d skipped" % tuple(total))
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
