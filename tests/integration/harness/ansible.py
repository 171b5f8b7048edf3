"""Run the collection through ansible-playbook / ad hoc ansible, as a user would."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from .paths import COLLECTIONS_PATH, VENV_BIN, VENV_PYTHON

_counter = itertools.count(1)
TIMEOUT = 600
_RESULT_LINE = re.compile(r'^localhost \| ([A-Z!]+) => \{$', re.MULTILINE)


def inventory(workdir: Path, vms: dict[str, dict[str, Any]]) -> Path:
    """A YAML inventory (written as JSON) with the VMs in the group ``vms``."""
    path = workdir / 'inventory.yml'
    path.write_text(json.dumps({'vms': {'hosts': vms}}))
    return path


def ansible_env(workdir: Path) -> dict[str, str]:
    """Environment for ansible commands: our collection, our venv's python, plain output."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_PYTHON_INTERPRETER=str(VENV_PYTHON),
        ANSIBLE_LOCAL_TEMP=str(workdir / 'ansible-tmp'),
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_RETRY_FILES_ENABLED='0',
        ANSIBLE_DEPRECATION_WARNINGS='1',
        PYTHONUNBUFFERED='1',
    )
    env.pop('ANSIBLE_CONFIG', None)
    return env


def run_playbook(workdir: Path, playbook: str | Path, extra_vars: dict[str, Any] | None = None,
                 *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook given as a path or as YAML text; ``args`` go to ansible-playbook."""
    n = next(_counter)
    if isinstance(playbook, str) and '\n' in playbook:
        path = workdir / f'playbook-{n}.yml'
        path.write_text(playbook)
    else:
        path = Path(playbook)
    vars_file = workdir / f'vars-{n}.json'
    vars_file.write_text(json.dumps(extra_vars or {}))
    argv = [str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', f'@{vars_file}', *args, str(path)]
    return subprocess.run(argv, env=ansible_env(workdir), cwd=workdir, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def recap_changed(output: str) -> dict[str, int]:
    """``changed=N`` of every host in the play recaps of ``output``."""
    recap = re.findall(r'^(\S+)\s+: ok=\d+\s+changed=(\d+)', output, re.MULTILINE)
    return {host: int(n) for host, n in recap}


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    """Fail the test with ansible's whole output unless it exited 0."""
    if result.returncode != 0:
        raise AssertionError(f'{" ".join(result.args)} exited {result.returncode}\n'
                             f'--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}')


def run_module(workdir: Path, module: str, args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    """Run ``vmjobs.qemu.<module>`` ad hoc; return its result with ``rc`` and ``raw`` (stderr)."""
    fqcn = module if '.' in module else f'vmjobs.qemu.{module}'
    argv = [str(VENV_BIN / 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
            '-m', fqcn, '-a', json.dumps(args)]
    if check:
        argv.append('--check')
    env = ansible_env(workdir)
    # ansible-core 2.19 has no json callback (it lives in ansible.posix, not installed);
    # minimal prints "localhost | STATUS => {json}" for any module that returns JSON.
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal',
               ANSIBLE_CALLBACK_RESULT_FORMAT='json')
    proc = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    match = _RESULT_LINE.search(proc.stdout)
    try:
        if not match:
            raise ValueError('no "localhost | STATUS => {" line')
        result: dict[str, Any] = json.JSONDecoder().raw_decode(proc.stdout, match.end() - 1)[0]
    except ValueError as exc:
        raise AssertionError(f'{" ".join(argv)}: no JSON result ({exc}), rc={proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}') from exc
    # the callback drops "failed" from the dump; the status word says it
    result['failed'] = match.group(1) in ('FAILED!', 'UNREACHABLE!')
    result.update(rc=proc.returncode, raw=proc.stderr)
    return result


def play_steps(workdir: Path, connection: dict[str, Any], steps: tuple[tuple[str, dict[str, Any]], ...],
               out: Path) -> list[dict[str, Any]]:
    """Run module calls ``(module, args)`` in one playbook (one ansible start-up).

    Every call gets ``connection``'s options; a failing step does not stop the play
    (its result says ``failed``). The results are written to ``out`` and returned.
    """
    tasks: list[dict[str, Any]] = [
        {'name': f'step {index}', f'vmjobs.qemu.{module}': dict(connection, **args),
         'register': f'r{index}', 'ignore_errors': True}
        for index, (module, args) in enumerate(steps)]
    names = ', '.join(f'r{index}' for index in range(len(steps)))
    tasks.append({'ansible.builtin.copy': {'dest': str(out), 'mode': '0600',
                                           'content': f'{{{{ [{names}] | to_json }}}}'}})
    result = run_playbook(workdir, json.dumps([{'hosts': 'localhost', 'gather_facts': False,
                                                'tasks': tasks}]) + '\n')
    assert out.exists(), result.stdout + result.stderr
    results: list[dict[str, Any]] = json.loads(out.read_text())
    for item in results:
        item.setdefault('failed', False)
    return results
