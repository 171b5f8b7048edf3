#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: job
short_description: Drive a named QEMU job to a state (complete, finalize, pause, resume, cancel, dismiss)
version_added: 0.1.0
description:
  - Applies QEMU's job verbs to a job addressed by its name, idempotently.
  - A job already in the requested state is left alone (RV(ignore:changed=false)).
  - A verb that becomes legal later on the job's normal path (complete on a mirror still
    copying, finalize before C(pending)) is waited for, up to O(wait_timeout).
  - A verb that can never apply (complete on a backup) fails at once, naming the job's status
    and the verbs QEMU allows in it.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description: The job's name.
    type: str
    required: true
  state:
    description:
      - C(completed) completes a C(ready) job (C(job-complete)); for a mirror or an active commit
        this is the pivot to the new image.
      - C(finalized) finalizes a C(pending) job (C(job-finalize)), the moment of its graph change.
      - C(paused) and C(running) pause and resume it.
      - C(canceled) cancels it (C(job-cancel)). Cancelling is asynchronous in QEMU; the task
        returns once the job has concluded, unless O(wait=false). A mirror or active commit that
        is C(ready) is ended without a pivot instead (C(block-job-cancel)), as libvirt's abort
        does; its target stays, a complete copy as of that moment. Any other canceled job's
        target file, if the collection created it, is deleted.
      - C(absent) dismisses a concluded job (C(job-dismiss)). The ledger keeps a tombstone with its
        outcome unless O(forget=true). A job that does not exist is already absent.
      - Whatever the state asked for, a job that has concluded gets its targets closed first
        (flushed and detached by QEMU; see the record's C(target_state)), and the task reports
        RV(ignore:changed=true) if that changed anything.
      - C(completed) on a job paused with C(paused) fails at once; resume it first.
      - Omit O(state) to change O(speed) or O(copy_mode) only.
    type: str
    choices: [completed, finalized, paused, running, canceled, absent]
  speed:
    description: New rate limit in bytes per second (0 is unlimited).
    type: int
  copy_mode:
    description:
      - Switch a running mirror from C(background) to C(write-blocking) copying (QEMU's
        C(block-job-change)), so that it converges under heavy guest writes; see O(vmjobs.qemu.block_job#module:copy_mode).
      - QEMU switches one way only, and needs to be 8.2 or newer; an older QEMU, a libvirt
        domain, a job that is not a mirror or C(background) on a C(write-blocking) mirror fail
        with a message saying so, and nothing changes. The same mode again changes nothing.
    type: str
    choices: [background, write-blocking]
  cancel:
    description:
      - With O(state=absent), cancel a job that has not concluded yet and wait for it to
        conclude before dismissing it. Without it, such a job makes the task fail.
    type: bool
    default: false
  forget:
    description:
      - With O(state=absent), drop the job's ledger record too, releasing its name. A later
        start of the same name then starts a new job.
    type: bool
    default: false
  verdict:
    description:
      - With O(state=absent), ends a pull backup (M(vmjobs.qemu.backup) with
        O(vmjobs.qemu.backup#module:delivery=pull)) with its reader's word on the read.
      - V(succeeded) acknowledges the read. The chain moves on. The bitmap the backup added
        at its start instant becomes the chain's bitmap (both of them after a full backup), so
        the next incremental reads what changed since this backup started.
      - V(failed) says the read failed. The chain's bitmaps stay as they were, so the next
        incremental still covers every change since the last acknowledged backup.
      - Either way the exports, the fleecing overlays and the start-instant bitmap are
        removed, and the backup is dismissed with the verdict as its outcome.
      - A running pull backup needs O(verdict) or O(cancel=true), which counts as not
        acknowledged (outcome C(canceled)). O(state=canceled) does the same without dismissing.
      - Refused for any other job.
    type: str
    choices: [succeeded, failed]
  wait:
    description:
      - Wait for the effect of the verb (the job concluded after cancel or finalize, left
        C(ready) after complete, paused after pause). V(false) returns once QEMU accepted it.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait, for the effect and for a verb that becomes legal later.
    type: float
    default: 300.0
'''

EXAMPLES = r'''
- name: Pivot a ready mirror to its copy
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: move-disk0-20261121
    state: completed

- name: Dismiss a concluded backup (its outcome stays in the ledger)
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: backup-disk0-20261121
    state: absent

- name: Cancel and dismiss whatever state the job is in
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: backup-disk0-20261121
    state: absent
    cancel: true

- name: Let a mirror that does not reach ready block guest writes until they are copied
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: move-disk0-20261121
    copy_mode: write-blocking

- name: End a pull backup with its reader's verdict (the reader's task registered "reader")
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: vm1-pull-20261121
    state: absent
    verdict: "{{ 'succeeded' if reader.rc == 0 else 'failed' }}"

- name: Throttle a running job to 10 MiB/s
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: backup-disk0-20261121
    speed: 10485760
'''

RETURN = r'''
job:
  description:
    - The job's record after the change, in the shape M(vmjobs.qemu.block_job) returns, on
      failure too.
  returned: always
  type: dict
changed:
  description:
    - True when the task sent a verb, closed the targets of a job that had concluded, or forgot a
      ledger record; false on a repeat.
  returned: always
  type: bool
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    JOB,
    check_timeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument


def drive(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Drive the named job to the requested state and/or speed."""
    if params['state'] is None and params['speed'] is None and params['copy_mode'] is None:
        raise InvalidArgument(f"job '{params['name']}': give state, speed, copy_mode or several",
                              params['name'])
    if params['speed'] is not None and params['speed'] < 0:
        raise InvalidArgument(f"job '{params['name']}': speed must not be negative "
                              f"(got {params['speed']})", params['name'])
    if params['verdict'] is not None and params['state'] != 'absent':
        raise InvalidArgument(f"job '{params['name']}': verdict ends a pull backup; use it "
                              'with state: absent', params['name'])
    driver = JobDriver(client, params['wait'],
                       check_timeout(params['wait_timeout'], 'wait_timeout'))
    result = driver.run(params['name'], params['state'], params['speed'], params['cancel'],
                        params['forget'], params['copy_mode'], params['verdict'])
    return {'changed': result.changed, 'job': result.record}


def main() -> None:
    run_module(JOB, drive)


if __name__ == '__main__':
    main()
