# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timestamps of task and loop-item results, as the controller receives them (bench only).

Enabled by the benchmarks with ANSIBLE_CALLBACKS_ENABLED=bench_times; writes one JSON
line per event to the file named by VJ_BENCH_TIMES.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: bench_times
type: aggregate
short_description: write result timestamps for the benchmarks
description: Writes one JSON line per task or loop-item result to the file in VJ_BENCH_TIMES.
'''


class CallbackModule(CallbackBase):
    """One JSON line per result: event, task name, item, time, result keys the bench needs."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get('VJ_BENCH_TIMES')

    def _write(self, event: str, task: object = None, result: dict | None = None) -> None:
        if not self._path:
            return
        line = {'event': event, 't': time.time(), 'task': getattr(task, 'name', None) or None}
        if result is not None:
            line.update({key: result.get(key) for key in ('item', 'elapsed', 'attempts', 'failed',
                                                          'msg', 'changed')})
        with open(self._path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(line, default=str) + '\n')

    def v2_playbook_on_task_start(self, task: object, is_conditional: bool) -> None:
        self._write('task_start', task)

    def v2_runner_on_start(self, host: object, task: object) -> None:
        self._write('runner_start', task)

    def v2_runner_on_ok(self, result: object) -> None:
        self._write('ok', getattr(result, 'task', None), dict(getattr(result, 'result', {})))

    def v2_runner_on_failed(self, result: object, ignore_errors: bool = False) -> None:
        self._write('failed', getattr(result, 'task', None), dict(getattr(result, 'result', {})))

    def v2_runner_item_on_ok(self, result: object) -> None:
        self._write('item_ok', getattr(result, 'task', None), dict(getattr(result, 'result', {})))

    def v2_runner_item_on_failed(self, result: object) -> None:
        self._write('item_failed', getattr(result, 'task', None),
                    dict(getattr(result, 'result', {})))

    def v2_runner_retry(self, result: object) -> None:
        self._write('retry', getattr(result, 'task', None), dict(getattr(result, 'result', {})))
