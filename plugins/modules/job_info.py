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
        C(amend), C(migration)).
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
  format:
    description:
      - C(records) returns the records in C(jobs) only.
      - C(xml) also returns them as one XML document in C(jobs_xml), a C(<job>) element per
        job, of the same shape for every kind of job (the job description of libvirt's job-API
        proposal; see docs/job-model.md for a sample). Needs the Python package C(lxml) on the
        hypervisor host.
    type: str
    choices: [records, xml]
    default: records
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

- name: The jobs as one XML document, for tools that read libvirt-style job XML
  vmjobs.qemu.job_info:
    socket: /run/vm1/qmp.sock
    format: xml
  register: info  # info.jobs_xml
'''

RETURN = r'''
jobs:
  description:
    - The matching records, sorted by name, in the shape M(vmjobs.qemu.block_job) returns.
  returned: always
  type: list
  elements: dict
jobs_xml:
  description:
    - The same records as a C(<jobs>) document, one C(<job name= type= state=>) element each, with
      C(<config>) (what the job was started with), C(<stats>) (C(<current>) of C(<end>), and a
      migration's statistics), C(<error>) and a group's C(<member>) elements.
  returned: when O(format=xml)
  type: str
  sample: |
    <jobs>
      <job name="nightly" type="backup" state="concluded" outcome="succeeded" raw-status="concluded">
        <config><device>disk0</device><target>/srv/backup/vm1-disk0.qcow2</target></config>
        <stats><current>67108864</current><end>67108864</end></stats>
      </job>
    </jobs>
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils import _jobxml, _lxml
from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    JOB_INFO,
    check_names,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument


def list_jobs(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The matching records; never changes anything."""
    if params['format'] == 'xml' and not _lxml.HAS_LXML:
        raise InvalidArgument('format: xml needs the Python package lxml on the hypervisor host '
                              f'({_lxml.LXML_IMPORT_ERROR})')
    jobs = client.list(check_names(params['name']), params['type'], params['status'],
                       params['include_dismissed'])
    result: dict[str, t.Any] = {'changed': False, 'jobs': jobs}
    if params['format'] == 'xml':
        result['jobs_xml'] = _jobxml.jobs_document(jobs)
    return result


def main() -> None:
    run_module(JOB_INFO, list_jobs, 'jobs')


if __name__ == '__main__':
    main()
