#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: snapshot
short_description: Save, load or delete an internal snapshot of a QEMU VM as a named job
version_added: 0.2.0
description:
  - Takes an internal snapshot (the VM state and every disk's internal snapshot, all named
    O(tag)), reverts the VM to one, or deletes one, each as a named job, idempotent by O(name)
    like every job of the collection. A re-run with the same name and options returns the job
    (C(changed=false)), also once it has been dismissed.
  - Over QMP the jobs are QEMU's own C(snapshot-save), C(snapshot-load) and C(snapshot-delete),
    so they appear in M(vmjobs.qemu.job_info), M(vmjobs.qemu.job_wait) and M(vmjobs.qemu.job)
    like every other job. QEMU keeps a concluded snapshot job until it is dismissed
    (M(vmjobs.qemu.job) with O(vmjobs.qemu.job#module:state=absent)).
  - Only qcow2 images hold internal snapshots. A disk of any other format (raw) is refused
    before QEMU is asked, with its name and format.
  - QEMU stops the guest while it saves or loads the VM state, and lets it go on afterwards.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description:
      - The job's name. One name per operation; a snapshot that is saved, reverted to and
        deleted takes three jobs, for example C(save-before-upgrade), C(revert-1),
        C(drop-before-upgrade).
      - 1 to 128 characters; a letter first, then letters, digits, C(.), C(_) or C(-).
    type: str
    required: true
  tag:
    description: The snapshot's name in the images (and in C(qemu-img snapshot -l)).
    type: str
    required: true
  state:
    description:
      - C(present) saves the snapshot (C(snapshot-save)); QEMU refuses a tag that exists.
      - C(reverted) loads it (C(snapshot-load)), so that the disks and the VM go back to it.
      - C(absent) deletes it from the disks (C(snapshot-delete)).
    type: str
    choices: [present, reverted, absent]
    default: present
  devices:
    description:
      - The disks (qdev ids, drive ids or node names) whose images take part. Empty (the
        default) takes every writable disk of the VM that is not a removable drive.
    type: list
    elements: str
    default: []
  vmstate:
    description:
      - The disk whose image holds the VM state, for C(present) and C(reverted). Default the
        first of O(devices).
    type: str
  wait:
    description: C(concluded) waits for the job to conclude (the default), C(none) does not.
    type: str
    choices: [none, concluded]
    default: concluded
  wait_timeout:
    description: Seconds to wait. On timeout the task fails and returns the last record seen.
    type: float
    default: 300.0
'''

EXAMPLES = r'''
- name: Snapshot the VM before an upgrade
  vmjobs.qemu.snapshot:
    socket: /run/vm1/qmp.sock
    name: save-before-upgrade
    tag: before-upgrade

- name: The upgrade went wrong; go back
  vmjobs.qemu.snapshot:
    socket: /run/vm1/qmp.sock
    name: revert-1
    tag: before-upgrade
    state: reverted

- name: Drop the snapshot
  vmjobs.qemu.snapshot:
    socket: /run/vm1/qmp.sock
    name: drop-before-upgrade
    tag: before-upgrade
    state: absent
'''

RETURN = r'''
job:
  description: The job's record, in the shape of M(vmjobs.qemu.job_info); its C(type) is
    C(snapshot-save), C(snapshot-load) or C(snapshot-delete).
  returned: always
  type: dict
elapsed:
  description: Seconds spent waiting, when O(wait=concluded).
  returned: when waited
  type: float
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    check_timeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.snapshot import (
    SNAPSHOT,
    snapshot_params,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient


def start(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Start (or find) the named snapshot job and optionally wait for it."""
    result = client.start(params['name'], snapshot_params(params), params['wait'],
                          check_timeout(params['wait_timeout'], 'wait_timeout'))
    return result.start_output()


def main() -> None:
    run_module(SNAPSHOT, start)


if __name__ == '__main__':
    main()
