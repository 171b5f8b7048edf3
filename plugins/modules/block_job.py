#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: block_job
short_description: Start a QEMU block job (stream, commit, mirror, backup, create) by name
version_added: 0.1.0
description:
  - Starts a block job under a name you choose, unique per VM, and is idempotent by that name.
  - If no job of that name exists, it is started (RV(ignore:changed=true)).
  - If a job of that name exists with the same type and parameters, it is returned whatever its
    status (RV(ignore:changed=false)). This holds after it was dismissed too, because the ledger
    keeps a tombstone of every name used; the remembered outcome is returned.
  - If the name exists as a different job the task fails and changes nothing.
  - For C(mirror) and C(backup) the module creates the O(target) image (size from the source,
    format from O(target_format) or the source) and attaches it.
  - A new O(target) file is created by the module itself, with mode O(mode) (default V(0600))
    whatever the umask, before QEMU opens and formats it, so it is never readable by others
    unless asked. When the module runs as root for a QEMU of another user, the file is given
    to QEMU's user.
  - When the job concludes, the first task that sees it (this module's own O(wait), a re-run of
    it, M(vmjobs.qemu.job_wait) or M(vmjobs.qemu.job)) detaches what the module attached, so
    QEMU flushes and closes the target before the task reports the outcome; a target of a job
    that failed or was canceled before it finished is deleted. The record's RV(job.target_state)
    says which, and the task reports RV(ignore:changed=true) when it closed something.
  - Control and reap jobs with M(vmjobs.qemu.job), wait with M(vmjobs.qemu.job_wait), list with
    M(vmjobs.qemu.job_info).
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
  - vmjobs.qemu.wait
options:
  name:
    description:
      - The job's name, used as QEMU's C(job-id).
      - 1 to 128 characters; a letter first, then letters, digits, C(.), C(_) or C(-).
    type: str
    required: true
  type:
    description:
      - C(stream) copies data from backing files into O(device) (C(block-stream)).
      - C(commit) merges O(top) (default the active layer, an I(active commit) that becomes
        C(ready) and needs M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:state=completed)) into
        O(base) (C(block-commit)).
      - C(mirror) copies O(device) to O(target) and becomes C(ready); completing it pivots the
        device to the copy (C(blockdev-mirror)).
      - C(backup) copies a point-in-time view of O(device) to O(target) (C(blockdev-backup)).
      - C(create) formats a new image file at O(target) of O(size) (C(blockdev-create)).
      - C(amend) changes format options of the image attached at O(device), such as a qcow2's
        LUKS key slots, as given in O(amend) (QEMU's C(x-blockdev-amend), probed; QEMU 7.2
        and later have it). Not available for libvirt domains.
    type: str
    required: true
    choices: [stream, commit, mirror, backup, create, amend]
  device:
    description:
      - The disk, as a node name or a qdev id (resolved to the node currently inserted) or a
        C(-drive) id.
      - With O(domain), a disk target such as C(vda), or the path of the disk's top image.
      - Required for all types but C(create).
    type: str
  base:
    description:
      - C(stream) and C(commit) only. The node (name or image path) of the backing chain that
        stays; default the bottom of the chain.
    type: str
  top:
    description:
      - C(commit) only. The node (name or image path) whose data is merged down; default the
        active layer.
    type: str
  target:
    description:
      - Path of the image the job writes (C(mirror), C(backup), C(create)).
      - The module refuses an existing file unless O(reuse_target=true).
      - A symbolic link is refused, whether it points to a file or nowhere. Links in the
        directory part are resolved, and QEMU gets the resolved path.
      - The directory, and each directory above it, must be owned by root or the module's user
        and not be writable by group or others unless it has the sticky bit (as C(/tmp)), so
        that nobody else can swap the file before QEMU opens it.
    type: path
  mode:
    description:
      - C(mirror), C(backup) and C(create). Permissions of a new O(target) file, as in
        M(ansible.builtin.file), an octal number as a quoted string such as V('0640'). The
        owner must keep read and write permission.
      - Default V(0600). The file has this mode before QEMU writes a byte to it; the umask does
        not matter.
      - An existing file used with O(reuse_target=true) keeps its mode.
      - Not part of the job's identity; a re-run with another mode finds the same job.
    type: raw
  target_format:
    description:
      - Format of O(target). Default the source's format for C(mirror) and C(backup), C(qcow2)
        for C(create).
    type: str
    choices: [qcow2, raw]
  reuse_target:
    description:
      - Write into an existing O(target) instead of creating it. For C(create) this overwrites
        the file.
    type: bool
    default: false
  sync:
    description:
      - What C(mirror) or C(backup) copies. Default C(full). C(top) keeps the source's backing
        file as the backing file of the target.
    type: str
    choices: [full, top, none, bitmap, incremental]
  bitmap:
    description:
      - C(backup) only. Name of the dirty bitmap for O(sync=bitmap) or O(sync=incremental).
    type: str
  bitmap_mode:
    description:
      - C(backup) only. When the bitmap is cleared (QEMU's C(bitmap-mode)).
    type: str
    choices: [on-success, never, always]
  speed:
    description:
      - Rate limit in bytes per second; 0 is unlimited. Change it later with
        M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:speed).
    type: int
  on_error:
    description:
      - What the job does on an I/O error (QEMU's C(on-error), or C(on-source-error) and
        C(on-target-error)).
    type: str
    choices: [report, ignore, enospc, stop]
  granularity:
    description:
      - C(mirror) only. Granularity of the dirty bitmap in bytes (power of 2, 512 to 64M).
    type: int
  buf_size:
    description:
      - C(mirror) only. Maximum bytes in flight.
    type: int
  copy_mode:
    description:
      - C(mirror) only. V(background) (QEMU's default) copies guest writes to the target
        later, like the rest of the disk; under heavy writes such a mirror may never become
        C(ready). V(write-blocking) also writes them to the target before the guest's write
        completes, so the mirror converges, at the cost of the guest's write latency.
      - A running mirror can be switched to V(write-blocking) with M(vmjobs.qemu.job) (QEMU 8.2
        and later). Not part of the job's identity, like O(speed).
      - Under libvirt, V(write-blocking) is C(blockCopy)'s synchronous-writes flag.
    type: str
    choices: [background, write-blocking]
  amend:
    description:
      - C(amend) only. QEMU's amend options for the image's format driver, as QEMU names them
        (C(BlockdevAmendOptions)); C(driver) defaults to the node's. For a qcow2 with LUKS
        encryption, C(encrypt) with C(format=luks), C(state) (C(active) to add a key,
        C(inactive) to remove one), C(new-secret) (the id of a C(secret) object QEMU has) and
        C(keyslot), or C(old-secret) to name a key to remove.
      - QEMU's refusals come back in one line with the job's name.
    type: dict
  size:
    description:
      - C(create) only. Virtual size, in bytes or with a unit (V(64M), V(10G)).
    type: raw
  auto_dismiss:
    description:
      - Let QEMU dismiss the job when it concludes. The default V(false) keeps the outcome
        (and QEMU's error text) until you dismiss the job with M(vmjobs.qemu.job)
        O(vmjobs.qemu.job#module:state=absent).
    type: bool
    default: false
  auto_finalize:
    description:
      - Let QEMU finalize the job (make its graph change) when it is done. V(false) stops the
        job in C(pending) until M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:state=finalized).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Add a LUKS key (secret object sec1 exists in QEMU) to the encrypted qcow2 of disk0
  vmjobs.qemu.block_job:
    socket: /run/vm1/qmp.sock
    name: disk0-add-key-1
    type: amend
    device: disk0
    amend:
      encrypt:
        format: luks
        state: active
        new-secret: sec1
        keyslot: 1
    wait: concluded

- name: Copy disk0 to new storage (becomes ready, then pivot with the job module)
  vmjobs.qemu.block_job:
    socket: /run/vm1/qmp.sock
    name: move-disk0-20261121
    type: mirror
    device: disk0
    target: /srv/fast/vm1-disk0.qcow2
    wait: ready

- name: Back up disk0 and wait for the outcome
  vmjobs.qemu.block_job:
    socket: /run/vm1/qmp.sock
    name: backup-disk0-20261121
    type: backup
    device: disk0
    target: /backup/vm1/disk0-20261121.qcow2
    mode: '0640'
    speed: 104857600
    wait: concluded

- name: Merge the active overlay into its backing file (active commit)
  vmjobs.qemu.block_job:
    socket: /run/vm1/qmp.sock
    name: merge-disk0
    type: commit
    device: disk0
    wait: ready

- name: Create a new 10 GiB qcow2 image through QEMU
  vmjobs.qemu.block_job:
    socket: /run/qsd/qmp.sock
    name: create-scratch
    type: create
    target: /srv/images/scratch.qcow2
    size: 10G
    wait: concluded
'''

RETURN = r'''
job:
  description: The job's normalised record.
  returned: always
  type: dict
  contains:
    name:
      description: The job's name.
      type: str
    type:
      description: The job type (C(stream), C(commit), C(mirror), C(backup), C(create), C(amend)).
      type: str
    status:
      description: QEMU's job status, or C(absent).
      type: str
      sample: running
    raw_status:
      description: The status as QEMU reported it.
      type: str
    outcome:
      description: For a concluded job C(succeeded), C(failed) or C(canceled); else null.
      type: str
    error:
      description: QEMU's own error text for a failed job.
      type: str
    progress:
      description: Bytes done (C(current)), C(total) and C(percent).
      type: dict
    speed:
      description: Rate limit in bytes per second.
      type: int
    ready:
      description: Whether the job is ready to be completed.
      type: bool
    paused:
      description: Whether the job is paused.
      type: bool
    auto_finalize:
      description: QEMU's C(auto-finalize) of the job.
      type: bool
    auto_dismiss:
      description: QEMU's C(auto-dismiss) of the job.
      type: bool
    dismissed:
      description: Whether this is the tombstone of a dismissed job.
      type: bool
    live:
      description:
        - Whether QEMU has the job now. V(false) for a record only the ledger keeps (a dismissed
          job's tombstone, or a job QEMU lost); its outcome is the last one seen.
      type: bool
    copy_mode:
      description:
        - A mirror's copy mode when it was started with O(copy_mode) or switched with
          M(vmjobs.qemu.job).
      type: str
      returned: for such a mirror
    actively_synced:
      description:
        - For a mirror on QEMU 8.2 and later, whether its target is in sync and guest writes
          are copied synchronously (V(write-blocking) and C(ready)).
      type: bool
      returned: for a mirror QEMU reports it for
    target_state:
      description:
        - For a job with a target the collection attached or created (C(mirror), C(backup),
          C(create)) V(open) while QEMU holds it, V(closed) once it is flushed, detached and
          closed (a complete file), V(in_use) when a device uses it (a pivoted mirror), or
          V(removed) when the job failed or was canceled and its unfinished file was deleted.
        - The task that sees the job conclude closes its targets before it returns.
      type: str
      returned: for jobs with a target
      sample: closed
  sample:
    name: backup-disk0
    type: backup
    status: concluded
    raw_status: concluded
    outcome: succeeded
    error: null
    progress: {current: 67108864, total: 67108864, percent: 100.0}
    speed: 0
    ready: false
    paused: false
    auto_finalize: true
    auto_dismiss: false
    dismissed: false
    live: true
elapsed:
  description: Seconds spent waiting, when O(wait) is not C(none).
  returned: when waited
  type: float
'''

import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import run_module
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import (
    BLOCK_JOB,
    WAIT,
    block_job_params,
    check_timeout,
    split_start_only,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._targets import (
    Targets,
    require_reuse,
)

#: Job types whose target the module creates (or reuses).
TARGET_TYPES = ('mirror', 'backup', 'create')


def start(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Start (or find) the named block job and optionally wait for it."""
    job, start_only = split_start_only(block_job_params(params))

    def prepare(_records: object, _entries: object) -> dict[str, t.Any]:
        if client.check_mode and job.get('target') and job['type'] in TARGET_TYPES:
            # what the start would refuse, refused in check mode too
            target = Targets().check(params['name'], job['target'])
            if job['type'] != 'create':
                require_reuse(params['name'], job['target'], target, job['reuse_target'])
        return start_only

    result = client.start(params['name'], job, params['wait'],
                          check_timeout(params['wait_timeout'], 'wait_timeout'), prepare)
    return result.start_output()


def main() -> None:
    run_module(dict(BLOCK_JOB, **WAIT), start)


if __name__ == '__main__':
    main()
