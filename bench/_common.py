# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the benchmarks: statistics, the table, ansible and module runs, daemons.

The benchmarks reuse the integration-test harness (tests/integration/harness) to start
QEMU and qemu-storage-daemon and to talk to their observer monitors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / 'tests' / 'integration'))

from harness.ansible import ansible_env
from harness.paths import COLLECTIONS_PATH, VENV_BIN, VENV_PYTHON
from harness.procs import Daemon

__all__ = [
    'BENCH',
    'COLLECTIONS_PATH',
    'REPO',
    'VENV_BIN',
    'VENV_PYTHON',
    'Daemon',
    'Row',
    'Workdir',
    'ansible_env',
    'bench_env',
    'median',
    'p95',
    'read_times',
    'run_adhoc',
    'run_direct',
    'run_playbook',
]


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest rank (the maximum for fewer than 20 values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclasses.dataclass
class Row:
    """One line of the results table."""

    bench: str
    what: str
    n: int
    median: float
    p95: float
    unit: str = 's'
    goal: str = ''
    verdict: str = ''
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, bench: str, what: str, values: Sequence[float], unit: str = 's',
           **kwargs: Any) -> Row:
        return cls(bench, what, len(values), median(values), p95(values), unit, **kwargs)

    def cells(self) -> list[str]:
        def show(value: float) -> str:
            if math.isnan(value):
                return '-'
            if self.unit == 's':
                return f'{value * 1000:.0f} ms' if value < 10 else f'{value:.1f} s'
            if self.unit == 'x':
                return f'{value:.2f}x'
            return f'{value:.0f} {self.unit}'
        return [self.bench, self.what, str(self.n), show(self.median), show(self.p95), self.goal,
                self.verdict]


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    head = ['benchmark', 'measure', 'n', 'median', 'p95', 'goal', 'result']
    lines = [head, ['---'] * len(head)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return '\n'.join('| ' + ' | '.join(cell.ljust(w) for cell, w in zip(line, widths)) + ' |'
                     for line in lines)


class Workdir:
    """A short temporary directory (UNIX socket paths) and the daemons started in it."""

    def __init__(self, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix='vjb-', dir='/tmp'))
        self.keep = keep
        self.daemons: list[Daemon] = []

    def start(self, starter: Any, *args: Any, **kwargs: Any) -> Daemon:
        daemon: Daemon = starter(self.path, *args, **kwargs)
        self.daemons.append(daemon)
        return daemon

    def close(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Workdir]:
    work = Workdir(keep)
    try:
        yield work
    finally:
        work.close()


def bench_env(work: Path, times: Path | None = None) -> dict[str, str]:
    """Environment for ansible runs; with ``times``, the timestamp callback writes there."""
    env = ansible_env(work)
    env.update(ANSIBLE_CALLBACK_PLUGINS=str(BENCH / 'callback_plugins'),
               ANSIBLE_HOST_KEY_CHECKING='0')
    if times is not None:
        env.update(ANSIBLE_CALLBACKS_ENABLED='bench_times', VJ_BENCH_TIMES=str(times))
    return env


def run_adhoc(work: Path, module: str, args: dict[str, Any] | None = None,
              extra: Sequence[str] = ()) -> tuple[subprocess.CompletedProcess[str], float]:
    """``ansible localhost -m module -a args``; returns the process and its wall time."""
    argv = [str(VENV_BIN / 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
            '-m', module, *extra]
    if args:
        argv += ['-a', json.dumps(args)]
    start = time.perf_counter()
    proc = subprocess.run(argv, env=bench_env(work), cwd=work, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, check=False)
    return proc, time.perf_counter() - start


def run_playbook(work: Path, playbook: Path, extra_vars: dict[str, Any], times: Path | None,
                 inventory: str = 'localhost,', args: Sequence[str] = (),
                 background: bool = False) -> subprocess.Popen[str]:
    """Start ansible-playbook; the caller waits for it (``proc.communicate()``)."""
    vars_file = work / f'vars-{time.monotonic_ns()}.json'
    vars_file.write_text(json.dumps(extra_vars))
    argv = [str(VENV_BIN / 'ansible-playbook'), '-i', inventory, '-e', f'@{vars_file}', *args,
            str(playbook)]
    if inventory == 'localhost,':
        argv[3:3] = ['-c', 'local']
    return subprocess.Popen(argv, env=bench_env(work, times), cwd=work, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a playbook started by :func:`run_playbook`; raise with its output on failure."""
    out = proc.communicate(timeout=3600)[0]
    if proc.returncode:
        raise RuntimeError(f'{" ".join(proc.args)} exited {proc.returncode}:\n{out}')
    return out


def module_command(module: str, args: dict[str, Any], work: Path,
                   python: str | Path = VENV_PYTHON) -> tuple[list[str], dict[str, str]]:
    """Run a module of the collection without ansible: argv and environment."""
    args_file = work / f'args-{time.monotonic_ns()}.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS_PATH))
    return [str(python), '-m', f'ansible_collections.vmjobs.qemu.plugins.modules.{module}',
            str(args_file)], env


def run_direct(module: str, args: dict[str, Any], work: Path) -> tuple[dict[str, Any], float]:
    """Run a module in its own Python process (no ansible); return its result and end time."""
    argv, env = module_command(module, args, work)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, check=False)
    end = time.time()
    return parse_module_output(proc.stdout, proc.stderr), end


def parse_module_output(stdout: str, stderr: str = '') -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeError(f'module printed no JSON result:\n{stdout}\n{stderr}') from exc
    return result


def read_times(path: Path) -> list[dict[str, Any]]:
    """The timestamp callback's lines so far."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


def event_time(event: dict[str, Any]) -> float:
    """A QMP event's own timestamp (QEMU's wall clock) in seconds."""
    stamp = event['timestamp']
    return float(stamp['seconds']) + stamp['microseconds'] / 1e6
