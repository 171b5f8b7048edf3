#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: backup
short_description: Back up several disks of a QEMU VM at one point in time, full, incremental or differential
version_added: 0.1.0
description:
  - Starts one backup of several disks under a name you choose, unique per VM, and is idempotent by
    that name like M(vmjobs.qemu.block_job). If the name exists with the same parameters the backup
    is returned whatever its status (RV(ignore:changed=false)), after its dismissal too.
  - All disks are copied as they were at one instant. QEMU runs one C(blockdev-backup) job per disk
    (a I(member)), all started in one C(transaction) with C(completion-mode=grouped); they conclude
    together, and if one member fails QEMU cancels the others.
  - The backup is one job for M(vmjobs.qemu.job_info), M(vmjobs.qemu.job_wait) and
    M(vmjobs.qemu.job). Its record lists the members. M(vmjobs.qemu.job)
    O(vmjobs.qemu.job#module:state=absent) dismisses every member.
  - When the backup concludes, the first task that sees it (this module's O(wait), a re-run,
    M(vmjobs.qemu.job_wait) or M(vmjobs.qemu.job)) detaches every member's target, so QEMU
    flushes and closes the images before the task reports the outcome, so a C(succeeded) backup is
    a set of complete files. The images of a backup that failed or was canceled are deleted.
    The record's C(target_state) says which.
  - With O(bitmap), backups form a I(chain). A C(full) backup copies everything and clears (or
    creates) two persistent dirty bitmaps on each disk. These are O(bitmap), which counts the
    changes since the last full or incremental backup, and its companion C(<bitmap>.full), which
    counts the changes since the last full backup.
  - An C(incremental) backup copies what changed since the last full or incremental backup of the
    chain. Its qcow2 target has that backup as its backing file. It uses O(bitmap) with QEMU's
    C(bitmap-mode=on-success), so a failed or cancelled incremental leaves the bitmap as it was
    and can simply be run again under a new name.
  - A C(differential) backup copies what changed since the last full backup and has that backup as
    its backing file. It uses the companion bitmap with C(bitmap-mode=never).
  - The module refuses an incremental or differential backup that would not restore correctly. It
    says why and asks for a full backup. The reasons are a failed, cancelled or unknown last full
    backup, an incremental whose outcome was never seen, a bitmap missing from a disk, and an image
    of the chain that is gone. The chain's history is kept on the hypervisor next to the ledger.
    Forgetting job records does not lose it.
  - The module creates every target file itself, with mode O(target_mode) (default V(0600)) before
    QEMU opens and formats it, and refuses existing files, symbolic links and directories other
    users may write to (see O(vmjobs.qemu.block_job#module:target)). Backing files are recorded
    relative to the target's directory, so a chain can be moved as a whole.
  - For a libvirt O(domain) the backup is a push backup through libvirt (C(backupBegin)),
    planned and refused by the same rules. The changes are tracked by libvirt's checkpoints
    instead of the bitmaps, one per full or incremental backup, named after it (see
    C(docs/libvirt.md)).
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description:
      - The backup's name. Member jobs get the QEMU job id C(<name>.<device>).
      - 1 to 128 characters; a letter first, then letters, digits, C(.), C(_) or C(-).
      - Required unless O(state=absent).
    type: str
  state:
    description:
      - C(present) starts (or finds) the backup O(name).
      - C(absent) forgets the chain O(bitmap) instead. Its bitmaps (C(<bitmap>) and
        C(<bitmap>.full) on each disk) or, for a libvirt O(domain), the checkpoints its backups
        made are removed from the VM, and its history from the ledger. The images stay where
        they are. A chain whose backup still runs is refused. The next backup of the chain
        must be a full one (or C(auto)).
    type: str
    choices: [present, absent]
    default: present
  disks:
    description:
      - The disks to back up. Empty (the default) backs up every writable disk of the VM that is
        not a removable drive (CD-ROM, floppy); give O(target_dir) then.
    type: list
    elements: dict
    default: []
    suboptions:
      device:
        description:
          - The disk, as a qdev id, a C(-drive) id or a node name.
          - The chain of a disk is kept under this name. Use the same name in every backup.
        type: str
        required: true
      target:
        description:
          - Path of the image to write. It must not exist.
          - Default C(<target_dir>/<device>.<format>).
        type: path
      format:
        description:
          - Format of the target. C(incremental) and C(differential) backups need C(qcow2).
        type: str
        choices: [qcow2, raw]
        default: qcow2
  target_dir:
    description:
      - Directory for targets not given per disk. It must exist.
    type: path
  target_mode:
    description:
      - Permissions of the target files, as O(vmjobs.qemu.block_job#module:mode) (that module's
        O(mode) is taken here by the kind of backup), an octal number as a quoted string such as
        V('0640'). The owner must keep read and write permission.
      - Default V(0600), whatever the umask.
      - Not part of the backup's identity.
    type: raw
  mode:
    description:
      - C(full) copies every disk whole.
      - C(incremental) copies what changed since the chain's last full or incremental backup.
      - C(differential) copies what changed since the chain's last full backup.
      - C(auto) decides per disk, for backups run every night. A disk whose chain is sound gets
        an C(incremental). A disk the module would refuse an incremental for gets a C(full).
        This happens when the disk is new to the chain, its bitmap or checkpoint is missing or
        inconsistent (QEMU was killed), the last backup failed or its outcome is unknown, or an
        image of the chain is gone. The result gives each disk's mode and the reason
        (RV(backup.disks)). A backup of the chain that still runs is refused as for any mode.
    type: str
    choices: [full, incremental, differential, auto]
    default: full
  bitmap:
    description:
      - Name of the chain's dirty bitmap on each disk. Needed for C(incremental),
        C(differential) and C(auto); without it a C(full) backup starts no chain.
      - The companion bitmap C(<bitmap>.full) is made too, so names ending in C(.full) are refused.
        A pull backup adds C(<bitmap>.pull) while it runs, so names ending in C(.pull) are
        refused too.
      - The bitmaps are persistent, which needs qcow2 disks.
    type: str
  delivery:
    description:
      - C(push) (the default) has QEMU or libvirt write each disk's backup into an image.
      - C(pull) has the backup software read the disks instead, while the guest runs on.
        The backup exposes each disk, as it was at the start instant, as a read-only NBD
        export. It returns per disk (RV(backup.disks)) the export's name C(export) and its
        C(uri). An C(incremental) or C(differential) export also carries the chain's bitmap
        as the NBD meta context C(meta_context) (e.g. C(qemu:dirty-bitmap:nightly)), which
        lists the extents to read.
      - A pull backup runs until the reader's verdict ends it, through M(vmjobs.qemu.job)
        O(vmjobs.qemu.job#module:state=absent) with O(vmjobs.qemu.job#module:verdict). Only
        V(succeeded) moves the chain on. A failed, canceled or never acknowledged pull
        backup leaves the chain's bitmaps as they were, so the next incremental still covers
        every change since the last acknowledged backup. The exports, the fleecing overlays
        and the start-instant bitmap are removed at the end.
      - Over QMP each disk is fleeced by QEMU's block layer. A qcow2 overlay in a private
        directory (C(<tmp>/vmjobs-pull-<hash>), mode 0700) keeps the old data the guest
        overwrites (C(blockdev-backup sync=none)), and QEMU's NBD server exports it.
      - No target, O(target_dir), O(target_mode), O(compress), O(perf) or O(speed) with
        C(pull); O(wait) must be C(none).
    type: str
    choices: [push, pull]
    default: push
  nbd_socket:
    description:
      - For O(delivery=pull), the UNIX socket of the NBD server the exports are on.
        QEMU runs one NBD server at a time. The module starts it on this socket, or uses the
        server that runs there already.
      - Default C(nbd.sock) in the private directory of the VM's pull backups; the collection
        stops that server when its last export is gone.
    type: path
  nbd_address:
    description:
      - For O(delivery=pull), export over TCP instead, at C(HOST:PORT) (C([V6]:PORT) for
        IPv6), for readers on other hosts. Exports over TCP always use TLS. The URIs are then
        C(nbds://HOST:PORT/EXPORT).
      - Over QMP it needs O(nbd_tls_dir). The module starts QEMU's NBD server there with a
        C(tls-creds-x509) object (C(vmjobs-nbd-tls), C(verify-peer=on), so readers need a
        client certificate the CA signed), and removes both when the backup ends. No other
        NBD server may run in that QEMU.
      - Under libvirt (O(domain)) it is given alone. libvirt starts the server with TLS and
        takes the certificates from libvirtd's C(qemu.conf), the directory of
        C(backup_tls_x509_cert_dir) (else C(default_tls_x509_cert_dir)); whether readers
        need a client certificate is C(backup_tls_x509_verify) there (on unless set
        otherwise).
    type: str
  nbd_tls_dir:
    description:
      - With O(nbd_address), the directory of the server's X.509 files as QEMU reads them,
        C(ca-cert.pem), C(server-cert.pem) and C(server-key.pem). QEMU opens them, so QEMU's
        user must be able to read them.
      - QMP only. Under libvirt the certificates are libvirtd's (see O(nbd_address)), and
        this option is refused.
    type: path
  compress:
    description:
      - Write compressed clusters (qcow2 targets only).
    type: bool
    default: false
  speed:
    description:
      - Rate limit per disk in bytes per second; 0 is unlimited. Change it later with
        M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:speed).
    type: int
  perf:
    description:
      - Performance tuning of the copy, passed as QEMU's C(x-perf). QEMU marks it unstable. The
        module asks QEMU (C(query-qmp-schema)) whether it offers each option and fails if not.
    type: dict
    suboptions:
      max_workers:
        description: Maximum number of parallel copy requests per disk.
        type: int
      max_chunk:
        description: Maximum size of one copy request in bytes (0 lets QEMU choose).
        type: int
      use_copy_range:
        description: Let QEMU use C(copy_file_range) and similar offloads.
        type: bool
  wait:
    description:
      - V(concluded) waits until the backup has concluded, and fails unless it succeeded, with
        QEMU's error text of the member that failed.
      - V(none) returns once the backup has started; wait later with M(vmjobs.qemu.job_wait).
    type: str
    choices: [none, concluded]
    default: none
  wait_timeout:
    description:
      - Seconds to wait when O(wait=concluded). On timeout the task fails and returns the last
        record seen; the backup goes on.
    type: float
    default: 300.0
notes:
  - Check mode plans the backup in its chain, and refuses it when a real run would. It starts
    nothing and writes nothing.
seealso:
  - module: vmjobs.qemu.block_job
  - module: vmjobs.qemu.job
'''

EXAMPLES = r'''
- name: Full backup of two disks, starting chain "nightly"
  vmjobs.qemu.backup:
    socket: /run/vm1/qmp.sock
    name: vm1-2026-11-21-full
    mode: full
    bitmap: nightly
    disks:
      - device: disk0
        target: /backup/vm1/2026-11-21-full/disk0.qcow2
      - device: disk1
        target: /backup/vm1/2026-11-21-full/disk1.qcow2
    wait: concluded

- name: Incremental backup of every disk of the VM the next night
  vmjobs.qemu.backup:
    socket: /run/vm1/qmp.sock
    name: vm1-2026-11-22-incremental
    mode: incremental
    bitmap: nightly
    target_dir: /backup/vm1/2026-11-22-incremental
    compress: true
    wait: concluded
    wait_timeout: 3600

- name: Dismiss it (the ledger keeps its outcome; the images were closed by the wait)
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: vm1-2026-11-22-incremental
    state: absent

- name: Nightly, whatever happened since; a disk that cannot continue its chain gets a full copy
  vmjobs.qemu.backup:
    socket: /run/vm1/qmp.sock
    name: vm1-2026-11-23
    mode: auto
    bitmap: nightly
    target_dir: /backup/vm1/2026-11-23
    wait: concluded
  register: nightly

- name: Say which disks started over, and why
  ansible.builtin.debug:
    msg: "{{ item.device }}: {{ item.reason }}"
  loop: "{{ nightly.backup.disks | selectattr('reason') }}"

- name: Expose every disk to the backup software as it is now, over NBD
  vmjobs.qemu.backup:
    socket: /run/vm1/qmp.sock
    name: vm1-pull-2026-11-23
    delivery: pull
    mode: auto
    bitmap: nightly
  register: pulled

- name: The backup software reads each disk's uri (and its meta_context), then says how it went
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: vm1-pull-2026-11-23
    state: absent
    verdict: succeeded
'''

RETURN = r'''
job:
  description:
    - The backup's record, in the shape of M(vmjobs.qemu.job_info). Status, outcome and progress
      summarise the members. The status is the least advanced member's; the outcome is C(failed)
      if any member failed, and then C(error) is that member's device and QEMU's error text.
  returned: always
  type: dict
  contains:
    name:
      description: The backup's name.
      type: str
    type:
      description: Always C(backup).
      type: str
    status:
      description: The least advanced member's status, or C(absent).
      type: str
    outcome:
      description: C(succeeded), C(failed) or C(canceled) once concluded; else null.
      type: str
    error:
      description: For a failed backup, the failed member's device and QEMU's error text.
      type: str
    progress:
      description: Bytes done (C(current)) and C(total) over all members, and C(percent).
      type: dict
    members:
      description: One entry per disk, with C(name) (the QEMU job id), C(device), C(target),
        C(status), C(outcome), C(error) and C(progress).
      type: list
      elements: dict
    dismissed:
      description: Whether this is the tombstone of a dismissed backup.
      type: bool
  sample:
    name: vm1-2026-11-22-incremental
    type: backup
    status: concluded
    outcome: succeeded
    error: null
    progress: {current: 6291456, total: 6291456, percent: 100.0}
    members:
      - {name: vm1-2026-11-22-incremental.disk0, device: disk0, status: concluded,
         outcome: succeeded, error: null, target: /backup/vm1/2026-11-22-incremental/disk0.qcow2,
         progress: {current: 2097152, total: 2097152, percent: 100.0}}
backup:
  description: What the backup copies where.
  returned: always
  type: dict
  contains:
    mode:
      description: C(full), C(incremental), C(differential) or C(auto), as asked.
      type: str
    bitmap:
      description: The chain's bitmap, or null.
      type: str
    disks:
      description:
        - Per disk C(device), C(target), C(format) and C(backing) (the image the target builds
          on, null for a full backup).
        - C(mode) is the disk's own mode (C(full) or C(incremental) for O(mode=auto)).
        - C(reason) says why O(mode=auto) gave the disk a full backup, for example
          C(there is no full backup of disk 'vdb' with bitmap 'nightly' to build an incremental
          backup on), and is null otherwise.
        - For O(delivery=pull) C(target) and C(backing) are null, and three keys say where to
          read. C(export) is the NBD export's name. C(uri) is its NBD URI, for example
          C(nbd+unix:///nightly-1.vda?socket=/tmp/vmjobs-pull-0123456789ab/nbd.sock).
          C(meta_context) is the dirty-bitmap meta context that lists the extents to read
          (C(qemu:dirty-bitmap:<bitmap>)), or null for a full backup.
      type: list
      elements: dict
    delivery:
      description: C(push) or C(pull), as asked.
      type: str
    marks:
      description:
        - The change marks the chain keeps on each disk (C(device)) after this backup
          (C(names)) - its two dirty bitmaps, or the libvirt checkpoint this backup made.
        - Empty without O(bitmap).
      type: list
      elements: dict
chain:
  description: For O(state=absent), what forgetting the chain removed.
  returned: when O(state=absent)
  type: dict
  contains:
    bitmap:
      description: The chain's bitmap name.
      type: str
    removed:
      description: Per disk (C(device)) the bitmaps or checkpoints removed (C(names)).
      type: list
      elements: dict
    backups:
      description: The backups the chain's history listed.
      type: list
      elements: str
elapsed:
  description: Seconds spent waiting, when O(wait) is not C(none).
  returned: when waited
  type: float
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.backup import BACKUP
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    check_timeout,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.backup import Backup
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.forget import (
    forget_chain,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument


def start(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Start (or find) the named backup and optionally wait for it; or forget a chain."""
    if params['state'] == 'absent':
        if not params['bitmap']:
            raise InvalidArgument('state=absent forgets a chain: give its bitmap')
        return forget_chain(client, params['bitmap'])
    return Backup(client).run(params, params['wait'],
                              check_timeout(params['wait_timeout'], 'wait_timeout'))


def main() -> None:
    run_module(BACKUP, start)


if __name__ == '__main__':
    main()
