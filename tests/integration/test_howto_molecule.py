"""docs/howto-molecule.md, run as written: its ``sh`` blocks in order in one shell, and each
``yaml`` block whose first line is ``# <path>`` written to that path (relative to the
shell's directory at that point), as a reader would save it.

The only change: HOME is this test's directory, so the collection is installed from its
tarball into a fresh ``~/.ansible/collections`` and the user's repository and molecule's
ephemeral directory live there too.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

from harness.paths import REPO
from harness.procs import qemu_processes

PAGE = REPO / 'docs' / 'howto-molecule.md'
BLOCK = re.compile(r'^```(sh|yaml)\n(.*?)^```$', re.MULTILINE | re.DOTALL)
FILE = re.compile(r'# (\S+)\n')


def script() -> str:
    lines = ['set -euo pipefail']
    for kind, body in BLOCK.findall(PAGE.read_text()):
        if kind == 'sh':
            lines.append(body)
        elif match := FILE.match(body):
            path = match.group(1)
            assert "'" not in path and 'VJ_EOF' not in body
            lines += [f"mkdir -p \"$(dirname '{path}')\"", f"cat > '{path}' <<'VJ_EOF'",
                      body[match.end():].rstrip('\n'), 'VJ_EOF']
    return '\n'.join(lines) + '\n'


def test_the_molecule_howto_as_written(workdir: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('ANSIBLE_', 'MOLECULE_')) and key != 'VIRTUAL_ENV'}
    env.update(HOME=str(workdir), ANSIBLE_NOCOLOR='1', NO_COLOR='1', PYTHONUNBUFFERED='1')
    try:
        done = subprocess.run(['bash', '-c', script()], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        leftovers = qemu_processes(workdir)
        for pidfile in workdir.rglob('vms/*.pid'):  # only after a failure: stop what it left
            with contextlib.suppress(OSError):
                pid = pidfile.read_text().strip()
                if str(pidfile).encode() in Path(f'/proc/{pid}/cmdline').read_bytes():
                    subprocess.run(['kill', pid], check=False)
    assert done.returncode == 0, done.stdout[-8000:]
    out = done.stdout
    project = workdir / 'backup-policy'
    assert (workdir / '.ansible/collections/ansible_collections/vmjobs/qemu/MANIFEST.json').exists()
    assert (project / 'molecule/default/molecule.yml').read_text().startswith('dependency:')
    # the scenario ran through, idempotence and verify included, and cleaned up after itself
    for step in ('create', 'converge', 'idempotence', 'verify', 'destroy'):
        assert re.search(rf"default (➜|>) {step}: Executed: Successful", out), step
    assert 'nightly-' in out and 'succeeded, 2 disks' in out
    assert not leftovers, f'QEMU processes left behind: {leftovers}'
    assert not list(workdir.rglob('vms/test_vm.json')), 'destroy removes the VMs directory'
