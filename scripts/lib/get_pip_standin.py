"""vmjobs-get-pip-standin: offline replacement for ansible-test's get-pip.py.

scripts/sanity copies this to ~/.ansible/test/cache/get_pip_<version>.py, where
ansible-test looks before downloading get-pip.py (which cannot be reached here).
It bootstraps pip from the interpreter's bundled wheel, then installs the
requested packages (e.g. pip==24.2) from the configured package index.
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip sets PIP_CONFIG_FILE=/dev/null, which would hide the machine's pip settings.
os.environ.pop('PIP_CONFIG_FILE', None)
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
