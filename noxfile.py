# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""latitudesh.cloud test sessions (docs/contributing.md): ``nox -l`` lists them, ``make test`` runs them all.

antsibull-nox (antsibull-nox.toml) adds docs-check, ansible-lint and build-import-check; the sessions
below run ``ansible-test --local``, as antsibull-nox's own would want docker or podman."""

import configparser
import json
import os
import shutil
import subprocess
from xml.sax.saxutils import quoteattr

import antsibull_nox
import nox

antsibull_nox.load_antsibull_nox_toml()
nox.options.error_on_missing_interpreters = nox.options.reuse_existing_virtualenvs = True
# make test runs with --parallel: sessions run side by side, except those that share ansible-test's
# virtualenvs under ~/.ansible/test (sanity, modules) and the sandbox's own tests (one bounds two requests to 0.2 s).
nox.options.allow_parallel = True

ROOT = os.path.dirname(os.path.abspath(__file__))
#: ansible-core minor: (pin, controller Python). Newest last.
CONTROLLERS = {"2.19": ("2.19.14", "3.11"), "2.20": ("2.20.10", "3.12"), "2.21": ("2.21.5", "3.13")}
#: Module-side Pythons, checked with ansible-test sanity --test compile/import of ansible-core 2.19.
MODULE_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
#: pip versions whose get-pip.py ansible-core 2.19 to 2.21 download (see get_pip_standin()).
GET_PIP_VERSIONS = ("24.2", "25.2")
TOOLS = "tests/ci/requirements-tools.txt"  # antsibull-changelog, antsibull-docs
ALLOW_MISSING = [name for name in os.environ.get("ALLOW_MISSING", "").split(",") if name]
GET_PIP_STANDIN = '''"""Stand-in for get-pip.py, written by the project's noxfile.py: ensurepip, then pip install."""
import os, subprocess, sys
env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
env.pop("GET_PIP", None)
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], env=env)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args, env=env)
'''


def get_pip_standin():
    """ansible-test makes sanity venvs without pip, then runs ~/.ansible/test/cache/get_pip_<version>.py, downloaded
    from ci-files.testing.ansible.com (unreachable here) when missing: put a stand-in there, keep one already there."""
    cache = fresh(os.path.expanduser("~/.ansible/test/cache"), empty=False)
    for path in [os.path.join(cache, "get_pip_%s.py" % version.replace(".", "_")) for version in GET_PIP_VERSIONS]:
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(GET_PIP_STANDIN)


def fresh(path, empty=True):
    """``path``, an existing directory: emptied first unless ``empty`` is false."""
    if empty:
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def works(python):
    """True when ``python`` (``python3.13``) is on PATH and runs (a pyenv shim may not)."""
    return bool(shutil.which(python)) and not subprocess.run([python, "-c", ""], stderr=subprocess.DEVNULL,
                                                             check=False).returncode


def copy_collection(session):
    """A fresh copy of the tracked and new files in ``ansible_collections/latitudesh/cloud``; cd there."""
    root = fresh(os.path.join(ROOT, session.create_tmp(), "collections"))  # create_tmp() may be relative
    copy = os.path.join(root, "ansible_collections", "latitudesh", "cloud")
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             check=True, stdout=subprocess.PIPE).stdout.decode("utf-8", "surrogateescape")
    for name in filter(None, listing.split("\0")):
        if os.path.isfile(os.path.join(ROOT, name)) or os.path.islink(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(copy, name), follow_symlinks=False)
    # ansible-test lists files with git from the nearest .git upwards: the copy needs its own.
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", copy], check=True)
    session.env["ANSIBLE_COLLECTIONS_PATH"] = root
    session.chdir(copy)
    return copy


def controller(session, core, tests, *requirements):
    """ansible-core ``core`` and the test requirements in the session's venv, then a fresh copy (cwd).

    ``tests`` is the folder the session runs: missing or empty, it fails the session unless allowed."""
    if not any(files for _path, _dirs, files in os.walk(os.path.join(ROOT, tests))):
        if tests not in ALLOW_MISSING:
            session.error("%s is missing or empty: restore it, or make test ALLOW_MISSING=%s" % (tests, tests))
        results(session, [("%s is missing (ALLOW_MISSING)" % tests, "skipped")])
        session.skip("%s is missing (ALLOW_MISSING)" % tests)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS", "ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATHS"):
        session.env[name] = None  # the caller's settings must not change what the tests see
    files = ["tests/ci/requirements-controller.txt"] + list(requirements)
    session.install("ansible-core==%s" % CONTROLLERS[core][0], *["-r" + os.path.join(ROOT, name) for name in files])
    session.env["LATITUDESH_ALLOW_MISSING"] = ",".join(ALLOW_MISSING)
    return copy_collection(session)


def junit(session, copy_from=None):
    """``tests/output/junit/<session>/``, emptied, with the JUnit files of ``copy_from`` (if any) copied in."""
    path = fresh(os.path.join(ROOT, "tests", "output", "junit", session.name))
    for name in os.listdir(copy_from) if copy_from and os.path.isdir(copy_from) else []:
        shutil.copy(os.path.join(copy_from, name), path)
    return path


def results(session, cases):
    """Write ``cases``, (name, outcome) with outcome None (passed), "skipped" or "failure", as JUnit."""
    body = "".join("<testcase name=%s>%s</testcase>" % (quoteattr(name), "<%s/>" % outcome if outcome else "")
                   for name, outcome in cases)
    with open(os.path.join(junit(session), "session.xml"), "w", encoding="utf-8") as handle:
        handle.write("<testsuite>%s</testsuite>\n" % body)


def pytest(session, suite):
    session.run("python", "-m", "pytest", suite, "-q", "-p", "no:cacheprovider", "--color=no",
                "--junitxml=%s/results.xml" % junit(session))


def ansible_test(session, *args, python=None, **kwargs):
    session.run("ansible-test", *args, "--local", "--python", python or session.python, "--color", "no", **kwargs)


def per_controller(func):
    """Register ``func(session, core)`` as one session per controller: ``<name>-<core>``, tagged both."""
    for core, (pin, python) in CONTROLLERS.items():
        def session_func(session, core=core):
            session.chdir(ROOT)
            func(session, core)
        session_func.__doc__ = "%s (ansible-core %s, Python %s)" % (func.__doc__, pin, python)
        nox.session(name="%s-%s" % (func.__name__, core), python=python, tags=[func.__name__, core],
                    allow_parallel=func.__name__ != "sanity")(session_func)
    return func


@per_controller
def sanity(session, core):
    """ansible-test sanity, all tests"""
    controller(session, core, "plugins")
    get_pip_standin()
    ansible_test(session, "sanity")


@per_controller
def units(session, core):
    """ansible-test units"""
    copy = controller(session, core, "tests/unit", "tests/unit/requirements.txt")
    try:
        ansible_test(session, "units", "--requirements")
    finally:  # failed or not, the cases are counted
        junit(session, os.path.join(copy, "tests", "output", "junit"))


def real_api_vars(session):
    """latitudesh_real_api_* from the filled-in cloud config (``-- --real-api``; docs/contributing.md)."""
    path = os.path.join(ROOT, "tests/integration/cloud-config-latitudesh.ini")
    parser = configparser.ConfigParser(interpolation=None)  # a token may hold "%"
    section = parser["default"] if parser.read(path) and parser.has_section("default") else {}
    url, token = section.get("api_url", "").strip().rstrip("/"), section.get("api_token", "").strip()
    midway = parser.BOOLEAN_STATES.get(section.get("fail_midway", "no").strip().lower())
    if not url.startswith(("https://", "http://")) or not token or token.startswith("@") or midway is None:
        session.error("%s: copy its .template there, fill in api_url (http(s)) and api_token (a test team's); "
                      "fail_midway, if given, is yes or no" % path)
    return dict(latitudesh_real_api_url=url, latitudesh_real_api_token=token, latitudesh_real_api_fail_midway=midway)


@per_controller
def integration(session, core):
    """ansible-test integration -vvv, then (sandbox mode) the leak scan of its output and files"""
    copy = controller(session, core, "tests/integration/targets")
    journal, log = os.path.join(copy, "token-journal"), os.path.join(copy, "tests/output/integration.log")
    real_api = "--real-api" in session.posargs
    # 0600: in real-API mode it holds the token (ansible-test copies it into its work directory).
    config = os.open("tests/integration/integration_config.yml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(config, "w") as handle:
        json.dump(real_api_vars(session) if real_api else {"latitudesh_sandbox_token_journal": journal}, handle)
    with open(os.path.join(fresh(os.path.dirname(log), empty=False), os.path.basename(log)), "w") as output:
        try:
            ansible_test(session, "integration", "-vvv", stdout=output)
        finally:
            with open(log, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
            print("\n".join(lines[-40:] + ["(last 40 of %d lines: %s)" % (len(lines), log)]))
    if real_api:
        session.log("real-API mode: %d sandbox-only tests skipped (see the log)"
                    % sum("skipped in real-API mode: " in line for line in lines))
    else:
        session.run("python", "tests/functional/leakscan.py", "--journal", journal, "--allow-token-files",
                    "tests/output", log, "tests/output")


@per_controller
def functional(session, core):
    """pytest tests/functional (faults, bad input, leaks, rate limits, request counts) on the sandbox"""
    controller(session, core, "tests/functional")
    pytest(session, "tests/functional")


@nox.session(python=CONTROLLERS["2.19"][1], allow_parallel=False)
def modules(session):
    """ansible-test sanity compile and import of the plugins on every module-side Python (3.8 to 3.13)"""
    controller(session, "2.19", "plugins")
    get_pip_standin()
    missing = [version for version in MODULE_PYTHONS if not works("python" + version)]
    for version in missing:
        if "python" + version not in ALLOW_MISSING:
            session.error("python%s not found: install it, or make test ALLOW_MISSING=python%s" % (version, version))
    # ansible-test runs them with a clean environment, where a pyenv shim fails: link the interpreters themselves.
    links = fresh(os.path.join(ROOT, session.create_tmp(), "pythons"))
    for version in set(MODULE_PYTHONS) - set(missing):
        found = session.run("python" + version, "-c", "import sys; print(sys.executable)", silent=True, external=True)
        os.symlink(found.strip(), os.path.join(links, "python" + version))
    session.env["PATH"] = links + os.pathsep + os.environ["PATH"]
    cases = []  # every Python is tried, so that one failure does not hide the others
    for version, test in [(version, test) for version in MODULE_PYTHONS for test in ("compile", "import")]:
        outcome = "skipped" if version in missing else None
        try:
            if not outcome:
                ansible_test(session, "sanity", "--test", test, python=version)
        except nox.command.CommandFailed:
            outcome = "failure"
        cases.append(("%s on python%s%s" % (test, version, " (ALLOW_MISSING)" * (version in missing)), outcome))
    results(session, cases)
    if any(outcome == "failure" for _name, outcome in cases):
        session.error("failed: " + ", ".join(name for name, outcome in cases if outcome == "failure"))


@nox.session(python=CONTROLLERS["2.19"][1], allow_parallel=False)
def sandbox(session):
    """The sandbox's own tests, including its fidelity to the official Python SDK"""
    controller(session, "2.19", "tests/sandbox/tests")
    pytest(session, "tests/sandbox/tests")


@nox.session(python=CONTROLLERS["2.19"][1])
def packaging(session):
    """Built tarball installed in a fresh venv, metadata consistency, reference docs"""
    controller(session, "2.19", "tests/packaging")
    pytest(session, "tests/packaging")


@nox.session(python=CONTROLLERS["2.19"][1])
def changelog(session):
    """antsibull-changelog lint"""
    session.install("-r" + os.path.join(ROOT, TOOLS))
    session.run("antsibull-changelog", "lint")


@nox.session(python=CONTROLLERS["2.19"][1])
def reference(session):
    """docs/reference is what antsibull-docs renders (``-- --update`` rewrites it); docs lint with rstcheck"""
    session.install("ansible-core==%s" % CONTROLLERS["2.19"][0], "-r" + os.path.join(ROOT, TOOLS))
    update, committed = "--update" in session.posargs, os.path.join(ROOT, "docs", "reference")
    rendered = fresh(committed if update else os.path.join(ROOT, session.create_tmp(), "reference"))
    copy_collection(session)
    session.run("antsibull-docs", "collection", "--use-current", "--squash-hierarchy", "--output-format",
                "simplified-rst", "--no-add-antsibull-docs-version", "--fail-on-error", "--cleanup", "everything",
                "--dest-dir", rendered, "latitudesh.cloud")
    if not update and subprocess.run(["diff", "-ru", committed, rendered], check=False).returncode:
        session.error("docs/reference is out of date: run make reference")
    # docs-check (antsibull-nox) skips rstcheck; this lint includes it.
    session.run("antsibull-docs", "lint-collection-docs", "--plugin-docs", ".")


#: The bench's reference module (the floor of a module built on requests); the collection itself needs no requests.
BENCH_REFERENCE_REQUESTS = "requests==2.34.2"

#: The newest controller whose Python is installed: what make demo and make bench use (not in make test).
NEWEST = next((core for core, (_pin, python) in reversed(CONTROLLERS.items()) if works("python" + python)), "2.19")


def newest_controller_run(session):
    """On the newest controller: demo runs the demo playbook twice on the sandbox, bench writes docs/performance.md"""
    session.install("ansible-core==%s" % CONTROLLERS[NEWEST][0])
    if session.name == "bench":  # only for the reference module built on requests (tests/bench/playbooks/library)
        session.install(BENCH_REFERENCE_REQUESTS)
    session.run("python", os.path.join(ROOT, "tests", session.name, "run.py"), *session.posargs)


nox.session(name="demo", python=CONTROLLERS[NEWEST][1], default=False)(newest_controller_run)
nox.session(name="bench", python=CONTROLLERS[NEWEST][1], default=False)(newest_controller_run)
