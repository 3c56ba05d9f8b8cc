"""Choose the Python and ansible-core pin for the user venv (``make venv``), and build it.

Stdlib only.  The newest controller Python from tests/ci/matrix.py CONTROLLERS that exists
(3.13, 3.12, 3.11, found on PATH or through pyenv) wins; otherwise ``python3`` when it is
3.11 or newer, with the pin of the newest controller whose Python is not newer than it.

  python3 tests/ci/pick_python.py              print "<python path> <ansible-core pin>"
  python3 tests/ci/pick_python.py --venv .venv  create or reuse the venv and say what it holds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import matrix  # noqa: E402  pylint: disable=wrong-import-position

VENV_SCHEMA = '1'


def pick():
    """Return (Interpreter, ansible-core pin) or (None, reason)."""
    for spec in reversed(matrix.CONTROLLERS):
        interpreter, _reason = matrix.find_python(spec.python)
        if interpreter:
            return interpreter, spec.core
    python3 = shutil.which('python3')
    if python3:
        # pylint: disable-next=protected-access
        found = matrix._probe([python3], matrix.minor(_version_of(python3)))
        if isinstance(found, matrix.Interpreter):
            for spec in reversed(matrix.CONTROLLERS):
                if matrix.version_key(found.version) >= matrix.version_key(spec.python):
                    return found, spec.core
    oldest = matrix.CONTROLLERS[0].python
    return None, 'no Python >= %s found (looked for %s and python3)' % (
        oldest, ', '.join('python' + spec.python for spec in reversed(matrix.CONTROLLERS)))


def _version_of(python):
    try:
        out = subprocess.run([python, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=60, check=False).stdout.decode().strip()
    except (OSError, subprocess.SubprocessError):
        out = ''
    return out or '0.0.0'


def make_venv(venv, interpreter, core):
    """Create or reuse venv with the pinned ansible-core and the collection's requirements.txt."""
    root = matrix.ROOT
    packages = ['ansible-core==%s' % core]
    requirements = os.path.join(root, 'requirements.txt')
    digest = hashlib.sha256(json.dumps([VENV_SCHEMA, interpreter.path, interpreter.full_version, packages]).encode())
    if os.path.isfile(requirements):
        with open(requirements, 'rb') as handle:
            digest.update(handle.read())
    else:
        packages.append('requests')
    stamp = os.path.join(venv, '.ci-stamp')
    python = os.path.join(venv, 'bin', 'python')
    try:
        with open(stamp) as handle:
            if handle.read().strip() == digest.hexdigest() and os.path.exists(python):
                print('%s is ready: Python %s, ansible-core %s' % (venv, interpreter.full_version, core))
                return 0
    except OSError:
        pass
    print('creating %s with Python %s (%s) and ansible-core %s' % (venv, interpreter.full_version, interpreter.path, core))
    sys.stdout.flush()
    shutil.rmtree(venv, ignore_errors=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1')
    for key in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PYENV_VERSION'):
        env.pop(key, None)
    if subprocess.call([interpreter.path, '-m', 'venv', venv], env=env, stdin=subprocess.DEVNULL):
        return 1
    argv = [python, '-m', 'pip', 'install', '--quiet'] + packages
    if os.path.isfile(requirements):
        argv += ['-r', requirements]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if not matrix.PIP_LOCATION_NOISE.match(line):
            sys.stdout.write(line.decode('utf-8', 'replace'))
    if proc.wait():
        print('pip install failed; %s removed' % venv)
        shutil.rmtree(venv, ignore_errors=True)
        return 1
    with open(stamp, 'w') as handle:
        handle.write(digest.hexdigest() + '\n')
    print('%s is ready: Python %s, ansible-core %s' % (venv, interpreter.full_version, core))
    return 0


def main():
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--venv', help='create or reuse this venv')
    options = parser.parse_args()
    interpreter, core = pick()
    if interpreter is None:
        print('pick_python: %s' % core, file=sys.stderr)
        return 1
    if not options.venv:
        print('%s %s' % (interpreter.path, core))
        return 0
    return make_venv(options.venv, interpreter, core)


if __name__ == '__main__':
    sys.exit(main())
