#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: verify
short_description: Verify a backup chain image by image, and read every cluster of it in a named job
version_added: 0.2.0
description:
  - Checks every image of a chain, from the image given down to its full backup, and reports
    each (RV(images)). An image is sound when C(qemu-img check) finds no corruption and no error
    in it (checked alone, without its backing file), it is not truncated, and its backing file
    exists and is recorded relative to the image's directory (so the chain survives being moved
    as a whole directory).
  - A chain whose images pass is then read whole, every cluster of every image, by a job named
    O(name) in a C(qemu-storage-daemon) the module starts for it (a C(blockdev-backup) into a
    C(null-co) node), as M(vmjobs.qemu.restore) does. The job is visible to
    M(vmjobs.qemu.job_info), M(vmjobs.qemu.job_wait) and M(vmjobs.qemu.job) through the daemon's
    socket (RV(socket)); its record's C(type) is C(verify).
  - Any problem fails the task with one line naming the first image concerned and what is
    wrong (truncated, a missing or absolute backing file, corruption, a cluster that cannot be
    read); RV(images) lists every image.
  - Idempotent by O(name) like every job of the collection. A re-run reports the remembered
    result without reading again; verify again under a new name.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description:
      - The verification job's name. 1 to 128 characters; a letter first, then letters, digits,
        C(.), C(_) or C(-). Unique on the host (per O(ledger_dir)).
    type: str
    required: true
  backup:
    description:
      - The name of a backup made with M(vmjobs.qemu.backup) of the VM given by O(socket) or
        O(domain); the chain under the image it wrote for O(device) is verified.
      - Exactly one of O(backup) and O(image).
    type: str
  device:
    description: The disk of O(backup), as the backup named it.
    type: str
  image:
    description:
      - Path of the top image of the chain to verify; no VM is needed.
        Exactly one of O(backup) and O(image).
    type: path
  wait:
    description: V(concluded) waits for the read to conclude (the default), V(none) does not.
    type: str
    choices: [none, concluded]
    default: concluded
  wait_timeout:
    description: Seconds to wait. On timeout the task fails with the last record; the read goes on.
    type: float
    default: 300.0
seealso:
  - module: vmjobs.qemu.restore
  - module: vmjobs.qemu.backup
'''

EXAMPLES = r'''
- name: Verify the chain of the newest backup of disk0
  vmjobs.qemu.verify:
    socket: /run/vm1/qmp.sock
    name: verify-vm1-2026-11-22
    backup: vm1-2026-11-22-incremental
    device: disk0

- name: Verify a chain from its files
  vmjobs.qemu.verify:
    name: verify-disk0-files
    image: /backup/vm1/2026-11-23/disk0.qcow2
  register: checked

- name: Show each image
  ansible.builtin.debug:
    msg: "{{ item.path }}: {{ 'ok' if item.ok else item.problem }}"
  loop: "{{ checked.images }}"
'''

RETURN = r'''
job:
  description: The verification's record, in the shape of M(vmjobs.qemu.job_info); C(type) is
    C(verify).
  returned: always
  type: dict
images:
  description: Each image of the chain, top first.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The image's path.
      type: str
    ok:
      description: Whether the image passed.
      type: bool
    problem:
      description: What is wrong with it, in one line, or null.
      type: str
socket:
  description: The QMP socket of the verification's daemon, for M(vmjobs.qemu.job_info).
  returned: success
  type: str
elapsed:
  description: Seconds spent waiting.
  returned: when waited
  type: float
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import (
    chain_jobs,
    run_tool,
    vm_client,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.restore import (
    SOURCE_RULES,
    VERIFY,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.verify import Verify
from ansible_collections.vmjobs.qemu.plugins.module_utils._targets import Runner


def start(params: dict[str, t.Any], check_mode: bool, run: Runner) -> dict[str, t.Any]:
    """Start (or find) the named verification and optionally wait for it."""
    return Verify(chain_jobs(params, check_mode, run), run,
                  vm_client(params, check_mode, run)).verify(params)


def main() -> None:
    run_tool(VERIFY, start, SOURCE_RULES)


if __name__ == '__main__':
    main()
