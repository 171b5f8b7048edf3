#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: instant_restore
short_description: Run a disk on a backup at once, and pull the backup into it as a named stream job
version_added: 0.2.0
description:
  - Makes a new qcow2 overlay, O(target), whose backing file is an image of a backup chain
    (O(image), or the image the backup O(backup) wrote for disk O(device)), attaches it to the
    running VM as a new disk O(disk), and starts a C(stream) job named O(name) that copies the
    whole chain into the overlay. The guest reads the backup's data through the overlay from the
    first moment and writes into the overlay; nothing is copied before it can start, so the disk
    answers in well under a second whatever its size.
  - When the stream has concluded (the job's C(outcome) is C(succeeded)), the overlay holds every cluster
    and records no backing file any more; the backup's files can be moved or deleted.
  - The job is a stream job like every other; M(vmjobs.qemu.job_info), M(vmjobs.qemu.job_wait)
    and M(vmjobs.qemu.job) see and steer it by O(name). A re-run with the same name and options
    returns the job (RV(ignore:changed=false)), also once it has been dismissed.
  - Over QMP (O(socket)) the overlay is opened with C(blockdev-add) (QEMU opens the chain
    read-only), given to a new C(virtio-blk-pci) device of id O(disk) (C(device_add), on
    O(bus)), and streamed with C(block-stream). Under libvirt (O(domain)) it is attached with
    libvirt's C(attachDeviceFlags), its C(<backingStore>) describing the chain, and streamed
    with C(blockPull); a persistent domain gets the disk in its definition too.
  - A disk O(disk) that already runs on O(target) (a VM started on an overlay made with
    O(attach=false)) is streamed into as it is.
  - O(attach=false) only makes the overlay, for a VM or domain to be started on it; start the
    stream then with M(vmjobs.qemu.block_job) O(vmjobs.qemu.block_job#module:type=stream) (or
    with this module and the VM's disk as O(disk)). A re-run finds the overlay on the same
    chain and changes nothing.
  - An existing O(target) is refused unless O(overwrite=true). The overlay is private (V(0600),
    or O(target_mode)) and follows the collection's rules for target files (no links, safe
    directories).
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description:
      - The stream job's name (QEMU's C(job-id)).
      - 1 to 128 characters; a letter first, then letters, digits, C(.), C(_) or C(-).
    type: str
    required: true
  image:
    description:
      - The path of the backup chain's image to restore (its backing files are found through
        its header, as C(qemu-img) finds them). Give this, or O(backup) and O(device).
    type: path
  backup:
    description:
      - The name of a backup (the M(vmjobs.qemu.backup) job) of this VM whose image of disk
        O(device) is restored, looked up in the VM's ledger.
    type: str
  device:
    description: With O(backup), the backed-up disk whose image is restored.
    type: str
  target:
    description: The path of the overlay to make, the restored disk's image from now on.
    type: path
    required: true
  backing:
    description:
      - How the overlay records its backing file, as an V(absolute) path, or V(relative) to the
        overlay's directory (the overlay and the backup can then move together).
    type: str
    choices: [absolute, relative]
    default: absolute
  overwrite:
    description: Replace a file at O(target). Without it an existing file is refused.
    type: bool
    default: false
  target_mode:
    description:
      - The overlay's file mode, as a quoted octal string such as V('0640'). Default V(0600).
    type: raw
  attach:
    description:
      - V(true) attaches the overlay to the running VM as O(disk) and starts the stream.
      - V(false) only makes the overlay.
    type: bool
    default: true
  disk:
    description:
      - The new disk's id, a qdev id over QMP (the C(virtio-blk-pci) device's C(id)), a target
        such as V(vdb) under libvirt. Required with O(attach=true).
      - The id of a disk already running on O(target) streams into that disk.
    type: str
  bus:
    description:
      - QMP only. The qdev bus the new device is plugged into, such as the id of a free
        C(pcie-root-port) on a q35 machine (whose root bus takes no hot-plugged devices).
        Default QEMU's choice.
    type: str
  speed:
    description: The stream's speed limit in bytes per second (V(0) for none).
    type: int
  wait:
    description:
      - V(none) returns once the disk is attached and the stream runs; V(concluded) waits for
        the stream to conclude.
    type: str
    choices: [none, concluded]
    default: none
  wait_timeout:
    description: Seconds to wait. On timeout the task fails and returns the last record seen.
    type: float
    default: 300.0
notes:
  - A failed or canceled stream leaves the disk running on the overlay and the backup chain;
    start it again with M(vmjobs.qemu.block_job) O(vmjobs.qemu.block_job#module:type=stream) under
    another name. The collection never detaches or deletes the overlay once it is the VM's disk.
  - QEMU 7.2 dies when its block graph is read while a stream that pulled a backing chain in has
    concluded and is not dismissed yet. On QEMU 7.2 dismiss the concluded stream
    (M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:state=absent)) before starting other block
    jobs or backups of the VM.
seealso:
  - module: vmjobs.qemu.block_job
  - module: vmjobs.qemu.backup
'''

EXAMPLES = r'''
- name: Run disk1 of vm1 on last night's backup at once
  vmjobs.qemu.instant_restore:
    socket: /run/vm1/qmp.sock
    name: restore-disk1
    image: /backup/vm1/chain-2026-11-21/2026-11-23-auto/disk1.qcow2
    target: /var/lib/vm1/disk1-restored.qcow2
    disk: restored1
    bus: hotplug1

- name: Wait until the disk no longer needs the backup
  vmjobs.qemu.job_wait:
    socket: /run/vm1/qmp.sock
    name: restore-disk1

- name: Under libvirt, from a backup's name
  vmjobs.qemu.instant_restore:
    domain: vm2
    name: restore-vda
    backup: nightly-2026-11-23
    device: vda
    target: /var/lib/libvirt/images/vm2-vda-restored.qcow2
    disk: vdb

- name: Make an overlay to boot a new VM on
  vmjobs.qemu.instant_restore:
    socket: /run/vm3/qmp.sock
    name: restore-vm3
    image: /backup/vm1/chain-2026-11-21/2026-11-21-full/disk0.qcow2
    target: /var/lib/vm3/disk0.qcow2
    attach: false
'''

RETURN = r'''
job:
  description:
    - The stream job's record, in the shape of M(vmjobs.qemu.job_info); its C(type) is
      C(stream).
    - With O(attach=false), the record of an absent job (no job was started).
  returned: always
  type: dict
overlay:
  description: The path of the overlay.
  returned: success
  type: str
elapsed:
  description: Seconds spent waiting, when O(wait=concluded).
  returned: when waited
  type: float
'''

import functools
import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    check_timeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.instant_restore import (
    INSTANT_RESTORE,
    instant_params,
    start_only,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.instant import (
    InstantRestore,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.restore import (
    backup_source,
)


def restore(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Make the overlay; attach it and start (or find) the named stream unless told not to."""
    job = instant_params(params)
    restores = InstantRestore(client, functools.partial(backup_source, client))
    return restores.run(params['name'], job, start_only(params), params['attach'], params['wait'],
                        check_timeout(params['wait_timeout'], 'wait_timeout'))


def main() -> None:
    run_module(INSTANT_RESTORE, restore)


if __name__ == '__main__':
    main()
