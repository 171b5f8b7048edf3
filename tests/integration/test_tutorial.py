"""docs/tutorial.md, run as written: its ``sh`` blocks, one after the other, in one shell.

The only changes: the lab lives in this test's directory instead of /tmp/vjlab, and HOME
points there too, so the collection is installed from its tarball into a fresh
``~/.ansible/collections``. Two commands the page says may be run again are run again,
and must change nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

from harness import recap_changed
from harness.paths import REPO
from harness.procs import qemu_processes

PAGE = REPO / 'docs' / 'tutorial.md'
BLOCK = re.compile(r'^```sh\n(.*?)^```$', re.MULTILINE | re.DOTALL)
MARK = '@@@ step '
AGAIN = {'vmjobs.qemu.backup ': 'backup again', 'vmjobs.qemu.evacuate ': 'evacuate again'}


def script(lab: Path) -> str:
    """The page's blocks with a marker line before each, and the two runs again."""
    lines = ['set -euo pipefail']
    for number, block in enumerate(BLOCK.findall(PAGE.read_text()), 1):
        block = block.replace('/tmp/vjlab', str(lab))
        lines += [f'echo "{MARK}{number}"', block]
        for needle, step in AGAIN.items():
            for command in block.splitlines():
                if needle in command:
                    lines += [f'echo "{MARK}{step}"', command]
    return '\n'.join(lines) + '\n'


def steps(output: str) -> dict[str, str]:
    parts = output.split(MARK)[1:]
    return {part.split('\n', 1)[0]: part.split('\n', 1)[1] for part in parts}


def test_the_tutorial_as_written(workdir: Path):
    lab = workdir / 'lab'
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('ANSIBLE_') and key != 'VIRTUAL_ENV'}
    env.update(HOME=str(workdir), ANSIBLE_NOCOLOR='1', PYTHONUNBUFFERED='1')
    try:
        done = subprocess.run(['bash', '-c', script(lab)], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
                              stdin=subprocess.DEVNULL, check=False)
    finally:
        if lab.exists():
            subprocess.run([str(REPO / 'scripts' / 'lab'), 'stop', str(lab)], check=False)
    assert done.returncode == 0, done.stdout[-6000:]
    out = steps(done.stdout)
    assert (workdir / '.ansible/collections/ansible_collections/vmjobs/qemu/MANIFEST.json').exists()
    with tarfile.open(next((REPO / 'build' / 'dist').glob('vmjobs-qemu-*.tar.gz'))) as tarball:
        caches = [name for name in tarball.getnames() if re.search(r'(^|/)\.\w+_cache(/|$)', name)]
    assert not caches, f'tool caches in the tarball: {caches[:5]}'

    backup = next(text for text in out.values() if 'vmjobs.qemu.backup :' in text)
    assert recap_changed(backup) == {'vm1': 3, 'vm2': 3}, backup
    assert set(recap_changed(out['backup again']).values()) == {0}, out['backup again']
    assert set(recap_changed(out['evacuate again']).values()) == {0}, out['evacuate again']

    text = done.stdout
    assert re.search(r'^\[vm1\] move-disk0-\w+: running [\d.]+% [\d.]+ MiB/256\.0 MiB', text,
                     re.MULTILINE), 'progress lines while the copy runs'
    assert 'Images are identical.' in text
    assert re.search(r'\[vm\d\] evacuate-vm\d-[\d-]+: concluded \(succeeded\)', text)
    assert text.count('| SUCCESS =>') == 2, 'job_info answers for both VMs'
    assert '"outcome": "failed"' not in text and '"outcome": null' not in text

    assert not lab.exists(), 'scripts/lab stop removes the lab'
    assert not qemu_processes(lab), 'and stops its QEMUs'
