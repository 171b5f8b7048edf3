#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: job_wait
short_description: Wait until named QEMU jobs reach a status
version_added: 0.1.0
description:
  - Waits until every named job reaches O(state). QEMU's job events wake the wait and a query
    confirms, so completion is noticed at once; the QMP monitor is let go at least once a second
    so other tasks and people get their turn.
  - A job that can no longer reach O(state) (a backup will never be C(ready); a job that failed
    will never be C(pending)) fails the task at once, and so does a job that is paused (through
    M(vmjobs.qemu.job)) or stopped on an I/O error, since it will not move on until it is resumed.
  - When a job the collection started has concluded, its targets are closed before the task
    returns. QEMU flushes and detaches the images it attached, so a backup is a complete file any
    process can read; the unfinished target files of a failed or canceled job are removed. The
    record's C(target_state) tells which.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description: The job name, or a list of names.
    type: list
    elements: str
    required: true
  state:
    description:
      - C(ready) (mirror, active commit), C(pending) (jobs with auto-finalize off; a job that
        went past it counts), C(concluded), or C(absent) (dismissed or never existed).
      - A concluded job that was already dismissed counts as C(concluded), with its outcome
        from the ledger.
    type: str
    choices: [ready, pending, concluded, absent]
    default: concluded
  timeout:
    description: Seconds to wait. On timeout the task fails and returns the last records seen.
    type: float
    default: 300.0
  fail_on_error:
    description: Fail the task when a job fails, with QEMU's error text in the message.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Wait for two backups
  vmjobs.qemu.job_wait:
    socket: /run/vm1/qmp.sock
    name: [backup-disk0, backup-disk1]
    state: concluded
    timeout: 3600
'''

RETURN = r'''
jobs:
  description: The records when the wait ended, in the shape M(vmjobs.qemu.block_job) returns.
  returned: always
  type: list
  elements: dict
job:
  description:
    - The record of the job when the wait ended, when O(name) names one job (on failure too).
  returned: when O(name) names one job
  type: dict
changed:
  description:
    - True when the task closed the targets of a job that had concluded (detached, flushed,
      and, for a job that did not finish, removed), applied a migration's completion policy, or
      resumed a migrated guest at its destination; false on a repeat.
  returned: always
  type: bool
elapsed:
  description: Seconds waited.
  returned: success
  type: float
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import (
    run_module,
    shaped,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    JOB_WAIT,
    check_names,
    check_timeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient


def wait(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Wait for the named jobs; close the targets of those that concluded."""
    result = client.wait(check_names(params['name']), params['state'],
                         check_timeout(params['timeout'], 'timeout'), params['fail_on_error'])
    return {'changed': client.acted, 'elapsed': round(result.elapsed or 0, 3),
            **shaped(result.records, params, 'wait')}


def main() -> None:
    run_module(JOB_WAIT, wait, 'wait')


if __name__ == '__main__':
    main()
