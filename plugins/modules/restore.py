#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: restore
short_description: Restore one disk of a backup chain to a new standalone image, as a named job
version_added: 0.2.0
description:
  - Copies the point in time one image of a backup chain represents (read through its backing
    files, down to the full backup) into a new image that depends on nothing, under a job name
    you choose. The point is given by the backup's name and the disk (O(backup), O(device)) of
    a VM the collection backed up, or by the path of the chain's image (O(image)); no VM is
    needed for the latter.
  - The copy is made by QEMU's block layer. The module starts a C(qemu-storage-daemon) for the
    job (daemonized, its QMP socket and pidfile in a private directory under O(ledger_dir)),
    opens the chain read-only there, creates the target through QEMU and runs one
    C(blockdev-mirror) job with C(sync=full), named O(name). Nothing writes to the chain, so
    the copy is complete when the mirror is READY; the task that sees it READY completes it.
    The job reads C(running) until it concludes (its C(raw_status) says C(ready) meanwhile).
  - The job is a job like any other for M(vmjobs.qemu.job_info), M(vmjobs.qemu.job_wait) and
    M(vmjobs.qemu.job), with O(socket) set to the daemon's socket the result gives
    (RV(socket)); its record's C(type) is C(restore).
  - When the copy has concluded, the task that sees it closes the target (QEMU flushes and
    closes it) and deletes it if the copy did not succeed, then dismisses the job and stops
    the daemon. A C(succeeded) restore is a complete, closed file. The ledger keeps the job's
    tombstone under the daemon's socket, so a re-run is C(changed=false) and copies nothing,
    and M(vmjobs.qemu.job_info) with that socket still reports it.
  - Idempotent by O(name) like every job of the collection; restore names are unique on the
    host (per O(ledger_dir)).
  - For a libvirt O(domain), O(attach) makes the restored image a disk of the domain through
    libvirt's API (C(attachDeviceFlags)); no QMP passthrough.
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description:
      - The restore job's name. 1 to 128 characters; a letter first, then letters, digits,
        C(.), C(_) or C(-).
    type: str
    required: true
  backup:
    description:
      - The name of a backup made with M(vmjobs.qemu.backup) of the VM given by O(socket) or
        O(domain). The image it wrote for O(device) is looked up in the VM's chain history
        (or, for a backup without a chain, in its job record).
      - A backup that did not succeed is refused. Exactly one of O(backup) and O(image).
    type: str
  device:
    description: The disk of O(backup), as the backup named it (C(disk0), C(vda), ...).
    type: str
  image:
    description:
      - Path of any image of a chain; the module restores the point that image represents.
        O(socket) and O(domain) are not needed. Exactly one of O(backup) and O(image).
    type: path
  target:
    description:
      - Path of the new image. Its directory must exist; an existing file is refused unless
        O(overwrite). Symbolic links and directories other users may write to are refused, as
        for every target of the collection.
    type: path
    required: true
  target_format:
    description: Format of the new image.
    type: str
    choices: [qcow2, raw]
    default: qcow2
  target_mode:
    description:
      - Permissions of the new image, an octal number as a quoted string such as V('0640').
        Default V(0600). Not part of the job's identity.
    type: raw
  overwrite:
    description:
      - Replace an existing regular file at O(target). Not part of the job's identity.
    type: bool
    default: false
  verify:
    description:
      - Once the restore has succeeded, check the new image (C(qemu-img check)) and report it in
        RV(verify); a problem fails the task.
    type: bool
    default: false
  attach:
    description:
      - With O(domain), attach the restored image to the domain as the disk of this target name
        (for example C(vdb)) through libvirt, live and in its persistent definition when it has
        one. Done once the restore succeeded; a disk already there with that image is left as is.
    type: str
  wait:
    description: V(concluded) waits for the restore to conclude (the default), V(none) does not.
    type: str
    choices: [none, concluded]
    default: concluded
  wait_timeout:
    description: Seconds to wait. On timeout the task fails with the last record; the copy goes on.
    type: float
    default: 300.0
notes:
  - With O(wait=none), the daemon stays until a task sees the job concluded and closes its target
    (M(vmjobs.qemu.job_wait) with the daemon's socket); a re-run of the restore task then
    dismisses the job and stops the daemon, and reports RV(ignore:changed=true) for that.
seealso:
  - module: vmjobs.qemu.backup
  - module: vmjobs.qemu.verify
'''

EXAMPLES = r'''
- name: Restore disk0 as it was at backup vm1-2026-11-22-incremental
  vmjobs.qemu.restore:
    socket: /run/vm1/qmp.sock
    name: restore-vm1-disk0-1122
    backup: vm1-2026-11-22-incremental
    device: disk0
    target: /var/lib/images/vm1-disk0-restored.qcow2
    verify: true

- name: Restore the point an image of a chain represents, no VM needed
  vmjobs.qemu.restore:
    name: restore-from-files
    image: /backup/vm1/2026-11-23/disk0.qcow2
    target: /var/lib/images/disk0.raw
    target_format: raw

- name: Restore a libvirt domain's disk and attach it as vdb
  vmjobs.qemu.restore:
    domain: vm2
    name: restore-vm2-vda
    backup: vm2-nightly-3
    device: vda
    target: /var/lib/libvirt/images/vm2-vda-restored.qcow2
    attach: vdb
'''

RETURN = r'''
job:
  description: The restore's record, in the shape of M(vmjobs.qemu.job_info); C(type) is
    C(restore), with C(target), C(target_state), and C(source) or C(backup) and C(device).
  returned: always
  type: dict
socket:
  description: The QMP socket of the restore's daemon, for M(vmjobs.qemu.job_info),
    M(vmjobs.qemu.job_wait) and M(vmjobs.qemu.job) (its tombstone stays readable there).
  returned: success
  type: str
verify:
  description: With O(verify), the check of the new image, as M(vmjobs.qemu.verify)'s C(images).
  returned: when verified
  type: list
  elements: dict
attached:
  description: With O(attach), the disk target the image was attached as, and whether the task
    attached it (C(changed)).
  returned: when attached
  type: dict
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
    RESTORE,
    RESTORE_RULES,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.restore import Restore
from ansible_collections.vmjobs.qemu.plugins.module_utils._targets import Runner


def start(params: dict[str, t.Any], check_mode: bool, run: Runner) -> dict[str, t.Any]:
    """Start (or find) the named restore and optionally wait for it."""
    vm = vm_client(params, check_mode, run)
    # only a libvirt backend attaches; in check mode its dry wrapper only asks whether it would
    attach = getattr(vm.backend, 'attach', None) if vm is not None else None
    return Restore(chain_jobs(params, check_mode, run), run, vm, attach).restore(params)


def main() -> None:
    run_tool(RESTORE, start, RESTORE_RULES)


if __name__ == '__main__':
    main()
