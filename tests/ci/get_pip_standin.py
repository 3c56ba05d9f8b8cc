"""Local stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates each sanity/import virtual environment without pip and then
runs ``~/.ansible/test/cache/get_pip_<version>.py`` (downloading it first when the
file is missing) with pip install arguments such as::

    --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

The download host is not reachable from every build machine, so
``tests/ci/matrix.py`` copies this file into that cache location.  It installs
pip with the interpreter's bundled ``ensurepip`` and then upgrades to the
requested packages from the configured package index.  ``--no-setuptools`` and
``--no-wheel`` only mean something to the real get-pip.py and are dropped.
"""

import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def main(argv):
    """Bootstrap pip with ensurepip, then pip install --upgrade the requested packages."""
    args = [arg for arg in argv if arg not in GET_PIP_ONLY_OPTIONS]

    env = dict(os.environ)
    env.pop('GET_PIP', None)
    env.setdefault('PIP_DISABLE_PIP_VERSION_CHECK', '1')

    rc = subprocess.call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'], env=env)

    if rc:
        sys.stderr.write('get-pip stand-in: ensurepip failed with exit code %d\n' % rc)
        return rc

    if not args:
        return 0

    return subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args, env=env)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
