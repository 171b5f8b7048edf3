# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin behind the waiting modules: live progress lines on the controller.

This is a private module: its API may change between any two releases.

When progress is shown, the module is run for stretches of at most
``vmjobs_progress_interval`` seconds of its timeout: a stretch that times out returns
the last records, which become progress lines, and the next stretch goes on waiting
(starters are idempotent, so running them again finds their job). A stretch ends the
moment the jobs reach their target, so completion is noticed as soon as without
progress, give or take one module start when it falls between two stretches. When
progress is not shown, the module runs once, exactly as without this plugin.
"""

from __future__ import annotations

import os
import re
import time
import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ._progress import Tracker

display = Display()

DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 300.0
MODES = ('auto', 'always', 'never')
_TIMED_OUT = re.compile(r'^timed out after [0-9.]+s')


def on_terminal() -> bool:
    """Whether the controller's output goes to a terminal.

    ansible-core runs an action in a worker process whose standard streams are
    ``/dev/null`` (2.19: ``sys.stdout`` is a buffer of its own), so the worker looks
    at its parent's, the controller's: on Linux through ``/proc``. Where that cannot
    be read the answer is no (``vmjobs_progress: always`` or ``-v`` show the lines).
    """
    try:
        where = os.readlink(f'/proc/{os.getppid()}/fd/1')
    except OSError:
        return False
    return where.startswith(('/dev/pts/', '/dev/tty')) or where == '/dev/console'


class ProgressAction(ActionBase):
    """Runs the module, printing a progress line per job at each interval while it waits."""

    #: The module option holding the wait's timeout.
    timeout_option = 'wait_timeout'

    def waits(self, args: dict[str, t.Any]) -> bool:
        """Whether these arguments make the module wait."""
        return str(args.get('wait', 'none')) != 'none'

    def shows_progress(self, task_vars: dict[str, t.Any]) -> bool:
        mode = str(task_vars.get('vmjobs_progress', 'auto'))
        if mode not in MODES:
            raise ValueError(f"vmjobs_progress must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == 'auto':
            return on_terminal() or display.verbosity > 0
        return mode == 'always'

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            progress = (self.waits(args) and not self._task.check_mode
                        and not self._task.async_val and self.shows_progress(task_vars))
            interval = float(task_vars.get('vmjobs_progress_interval', DEFAULT_INTERVAL))
        except ValueError as err:
            return dict(result, failed=True, msg=str(err))
        if not progress:
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            outcome = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return t.cast('dict[str, t.Any]', merge_hash(result, outcome))
        return t.cast('dict[str, t.Any]', merge_hash(result, self._stretches(
            args, task_vars, max(interval, 0.5))))

    def _stretches(self, args: dict[str, t.Any], task_vars: dict[str, t.Any],
                   interval: float) -> dict[str, t.Any]:
        timeout = float(args.get(self.timeout_option, DEFAULT_TIMEOUT))
        host = task_vars.get('inventory_hostname', '?')
        tracker = Tracker()
        start = time.monotonic()
        changed = False
        while True:
            left = max(0.0, timeout - (time.monotonic() - start))
            stretch = dict(args, **{self.timeout_option: min(interval, left)})
            outcome = self._execute_module(module_name=self._task.resolved_action,
                                           module_args=stretch, task_vars=task_vars)
            changed = changed or bool(outcome.get('changed'))
            records = outcome.get('jobs') or ([outcome['job']] if outcome.get('job') else [])
            lines = tracker.lines(records, time.monotonic())
            if not (outcome.get('failed') and outcome.get('timed_out')) or left <= interval:
                break
            for line in lines:
                display.display(f'[{host}] {line}')
        self._remove_tmp_path(self._connection._shell.tmpdir)
        for line in lines:
            display.display(f'[{host}] {line}')
        outcome['changed'] = changed
        waited = time.monotonic() - start
        if 'elapsed' in outcome:
            outcome['elapsed'] = round(waited, 3)
        if outcome.get('timed_out'):
            outcome['msg'] = _TIMED_OUT.sub(f'timed out after {waited:.1f}s', outcome['msg'])
        return t.cast('dict[str, t.Any]', outcome)
