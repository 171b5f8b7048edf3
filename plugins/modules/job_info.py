#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: job_info
short_description: List the jobs of a QEMU VM, every kind in one record shape
version_added: 0.1.0
description:
  - Lists the jobs QEMU has (running or concluded and not yet dismissed), joined with what the
    ledger remembers of them, and jobs the ledger knows that QEMU no longer has.
  - Never changes anything.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description: Only jobs of these names.
    type: list
    elements: str
    default: []
  type:
    description:
      - Only jobs of these types (C(stream), C(commit), C(mirror), C(backup), C(create),
        C(migration)).
      - A multi-disk backup of M(vmjobs.qemu.backup) has type C(backup) and lists its disks in
        C(members).
    type: list
    elements: str
    default: []
  status:
    description: Only jobs in these statuses (QEMU's job status words, or C(absent)).
    type: list
    elements: str
    default: []
  include_dismissed:
    description: List the tombstones of dismissed jobs too.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: All jobs of a VM
  vmjobs.qemu.job_info:
    socket: /run/vm1/qmp.sock
  register: info

- name: Concluded jobs that still wait to be dismissed
  vmjobs.qemu.job_info:
    socket: /run/vm1/qmp.sock
    status: concluded
'''

RETURN = r'''
jobs:
  description:
    - The matching records, sorted by name, in the shape M(vmjobs.qemu.block_job) returns.
  returned: always
  type: list
  elements: dict
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    JOB_INFO,
    check_names,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient


def list_jobs(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The matching records; never changes anything."""
    jobs = client.list(check_names(params['name']), params['type'], params['status'],
                       params['include_dismissed'])
    return {'changed': False, 'jobs': jobs}


def main() -> None:
    run_module(JOB_INFO, list_jobs, 'jobs')


if __name__ == '__main__':
    main()
