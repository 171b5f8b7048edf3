#!/usr/bin/python
# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: migration
short_description: Start a live migration of a QEMU VM as a named job
version_added: 0.1.0
description:
  - Starts an outgoing live migration of the VM behind O(socket) under a O(name) you choose, and
    is idempotent by that name. QEMU gives migrations no id and runs one at a time per VM; the
    ledger on the hypervisor host keeps the name, the destination, the start time, the last
    progress seen and the outcome.
  - If no migration of that name exists, it is started (RV(ignore:changed=true)). A re-run with
    the same name reports the running or finished migration (RV(ignore:changed=false)) and never
    starts a second one, also after the source QEMU exited because the migration completed; then
    the ledger, and the destination when O(dest_socket) was given, are the witnesses.
  - Either migrate to O(dest_uri), or give O(dest_socket), the QMP socket of a destination QEMU started
    with C(-incoming defer); the module then sets the destination up, runs C(migrate-incoming)
    there (on O(dest_uri), default C(tcp:127.0.0.1:0), a free port) and migrates to the address it
    listens on. If the guest ran on the source, it is resumed on the destination once the
    migration succeeded and a task waiting on it sees that.
  - Capabilities and parameters are set on both sides as QEMU requires, and only those this QEMU
    reports (C(query-migrate-capabilities), C(query-migrate-parameters)); asking for one it lacks
    fails before anything starts. Capabilities the module manages (C(events), C(postcopy-ram),
    C(auto-converge), C(multifd), C(xbzrle)) are switched off when not asked for; parameters
    not given keep QEMU's current values.
  - The completion policies (O(completion_timeout), O(postcopy_after_passes)) act while a task
    waits on the migration, with O(wait) here or with M(vmjobs.qemu.job_wait).
  - Follow it with M(vmjobs.qemu.job_info) and M(vmjobs.qemu.job_wait) (type C(migration)), cancel
    it with M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:state=canceled), and forget a concluded one
    with O(vmjobs.qemu.job#module:state=absent).
author:
  - vmjobs.qemu contributors (@vmjobs)
extends_documentation_fragment:
  - vmjobs.qemu.connection
options:
  name:
    description: The migration's name, unique per VM (QEMU's id rules).
    type: str
    required: true
  dest_uri:
    description:
      - Where to migrate to (C(tcp:HOST:PORT), C(unix:PATH) or C(exec:COMMAND)).
      - With O(dest_socket), the address the destination listens on (C(tcp:) or C(unix:); port
        C(0) picks a free one).
      - Not called C(uri), which names the libvirt connection on every module of the collection.
      - With O(domain), the libvirt URI of the destination's libvirt daemon, such as
        C(qemu+tcp://HOST/system); libvirt migrates peer to peer and its destination picks the
        address QEMU listens on.
    type: str
  dest_socket:
    description:
      - QMP socket of the destination QEMU, started with C(-incoming defer) on the same host or
        reachable as a path from it.
    type: path
  bandwidth:
    description:
      - Maximum bandwidth in bytes per second (C(max-bandwidth)). Not part of the job's identity;
        change it later with M(vmjobs.qemu.job) O(vmjobs.qemu.job#module:speed).
    type: int
  downtime_limit:
    description: Largest tolerated downtime in milliseconds (C(downtime-limit)).
    type: int
  auto_converge:
    description: Throttle the guest's vCPUs when the migration does not converge.
    type: bool
    default: false
  postcopy:
    description:
      - Enable post-copy (C(postcopy-ram), on both sides). The migration starts in pre-copy and
        switches when O(postcopy_after_passes) or O(completion_action=postcopy) says so.
    type: bool
    default: false
  postcopy_after_passes:
    description: Switch to post-copy once this many passes over RAM are done. Needs O(postcopy).
    type: int
  multifd_channels:
    description: Enable multifd with this many channels (on both sides).
    type: int
  xbzrle_cache_size:
    description: Enable XBZRLE compression with a cache of this many bytes.
    type: int
  tls_creds:
    description:
      - Id of a C(tls-creds-x509) object that exists in both QEMUs; the migration is then
        encrypted.
    type: str
  tls_hostname:
    description: Host name to check the destination's certificate against. Needs O(tls_creds).
    type: str
  completion_timeout:
    description:
      - Seconds after the start when a migration still copying gets O(completion_action), like
        C(virsh migrate --timeout).
    type: float
  completion_action:
    description:
      - What O(completion_timeout) does. V(cancel) cancels the migration; V(postcopy) switches
        to post-copy (needs O(postcopy)); V(pause) pauses the guest on the source so that the
        migration converges (it is resumed on the destination afterwards).
    type: str
    choices: [cancel, postcopy, pause]
    default: cancel
  unsafe:
    description:
      - Libvirt domains only. Migrate even though libvirt considers a disk unsafe to migrate
        (not on storage it knows to be shared, or with a cache mode it refuses), like
        C(virsh migrate --unsafe). Only when the disks really are reachable from the destination.
    type: bool
    default: false
  storage:
    description:
      - Where the VM's disks are. V(shared) (the default) migrates RAM and device state only;
        the destination uses the same disk images (shared storage).
      - V(copy) copies the disks too, for hosts without shared storage. With O(socket), the
        destination QEMU (O(dest_socket), needed) serves its own disks over NBD on a UNIX socket
        beside its QMP socket; the source mirrors each disk into it (one C(blockdev-mirror) per
        disk, the migration's members); once every disk is in sync the migration proper starts;
        once it has completed the copies are ended, so that the destination's disks equal the
        source's, and the NBD server is stopped before the guest resumes there. The
        destination's disks must exist, as large as the source's.
      - With O(domain), libvirt copies the disks itself (C(VIR_MIGRATE_NON_SHARED_DISK)); the
        destination host needs the disk images at the same paths.
      - Like the completion policies, the steps after the copy are taken while a task waits on
        the migration (O(wait=concluded), or M(vmjobs.qemu.job_wait)).
    type: str
    choices: [shared, copy]
    default: shared
    version_added: 0.2.0
  disks:
    description:
      - With O(storage=copy), the disks to copy (qdev ids such as C(disk0), or libvirt targets
        such as C(vda)); every writable disk when not given.
    type: list
    elements: str
    version_added: 0.2.0
  wait:
    description:
      - V(concluded) waits until the migration ends and fails unless it succeeded.
      - V(none) returns once QEMU accepted the migration.
    type: str
    choices: [none, concluded]
    default: none
  wait_timeout:
    description: Seconds to wait; on timeout the task fails with the last record seen.
    type: float
    default: 300.0
notes:
  - Supports check mode; a migration that would start is reported as RV(ignore:changed=true).
'''

EXAMPLES = r'''
- name: Migrate to a destination QEMU waiting with -incoming defer, and wait
  vmjobs.qemu.migration:
    socket: /run/vm1/qmp.sock
    name: evacuate-2026-11-21
    dest_socket: /run/vm1-new/qmp.sock
    bandwidth: 1073741824
    wait: concluded

- name: Migrate to another host, switching to post-copy if it takes longer than 60 s
  vmjobs.qemu.migration:
    socket: /run/vm1/qmp.sock
    name: move-to-hv2
    dest_uri: tcp:10.0.0.2:4444
    postcopy: true
    completion_timeout: 60
    completion_action: postcopy
    wait: concluded
    wait_timeout: 1800

- name: Migrate to a destination QEMU with disks of its own, copying the disks first
  vmjobs.qemu.migration:
    socket: /run/vm1/qmp.sock
    name: move-with-disks
    dest_socket: /run/vm1-new/qmp.sock
    storage: copy
    wait: concluded
    wait_timeout: 3600

- name: Cancel it
  vmjobs.qemu.job:
    socket: /run/vm1/qmp.sock
    name: move-to-hv2
    state: canceled
'''

RETURN = r'''
job:
  description:
    - The migration's record, in the shape M(vmjobs.qemu.block_job) returns, with type
      C(migration).
    - RV(job.status) maps QEMU's MigrationStatus (kept in RV(job.raw_status)) onto job statuses
      (setup, active, device, postcopy-active → running; pre-switchover, postcopy-paused →
      paused; cancelling → aborting; completed, failed, cancelled → concluded).
  returned: always
  type: dict
  contains:
    status:
      description: The job status QEMU's MigrationStatus maps to.
      type: str
    raw_status:
      description: QEMU's MigrationStatus.
      type: str
    outcome:
      description: V(succeeded), V(failed) or V(canceled) once concluded, else V(null).
      type: str
    error:
      description: QEMU's error text (C(error-desc)) when the migration failed.
      type: str
    progress:
      description:
        - RAM copied (C(current) = total - remaining) of C(total), C(percent), the transfer
          C(rate) in bytes per second and the bytes C(remaining).
      type: dict
    transferred:
      description: Bytes sent so far, repeated dirty pages included.
      type: int
    passes:
      description: Passes over RAM (C(dirty-sync-count)).
      type: int
    dirty_page_rate:
      description: Pages dirtied per second.
      type: int
    expected_downtime:
      description: Downtime QEMU expects, in milliseconds, while copying.
      type: int
    downtime:
      description: The downtime in milliseconds, once completed.
      type: int
    total_time:
      description: Milliseconds since the migration started (or that it took).
      type: int
    postcopy:
      description: Whether the migration switched to post-copy.
      type: bool
    dest_uri:
      description: The address migrated to (the one the destination listens on).
      type: str
    actions_taken:
      description: Completion-policy actions taken (V(postcopy), V(pause), V(cancel)).
      type: list
      elements: str
    storage:
      description: V(copy) for a migration that copies its disks (O(storage=copy), over QMP).
      type: str
      returned: with O(storage=copy) over QMP
    phase:
      description:
        - V(storage) while the disks are copied (RV(job.progress) then counts the bytes of
          every disk together), V(migration) once the migration proper has started
          (RV(job.progress) is RAM again).
      type: str
      returned: with O(storage=copy) over QMP
    disks:
      description:
        - The disk copies, one per disk, each with C(device), its job C(name), C(status),
          C(ready), C(outcome), C(error) and C(progress) (bytes of that disk).
      type: list
      elements: dict
      returned: with O(storage=copy) over QMP
    disks_progress:
      description: The bytes of every disk copy together (C(current), C(total), C(percent)).
      type: dict
      returned: with O(storage=copy) over QMP
  sample:
    name: evacuate-2026-11-21
    type: migration
    status: concluded
    raw_status: completed
    outcome: succeeded
    error: null
    progress: {current: 67641344, total: 67641344, percent: 100.0, rate: 48544000, remaining: 0}
    transferred: 50748497
    passes: 3
    downtime: 44
    total_time: 1047
    postcopy: false
    dest_uri: tcp:127.0.0.1:42287
    live: true
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
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.migration import (
    MIGRATION,
    migration_params,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import describe
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import JobFailed


def start(client: JobClient, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Start (or find) the named migration and optionally wait for it to end."""
    result = client.start(params['name'], migration_params(params), params['wait'],
                          check_timeout(params['wait_timeout'], 'wait_timeout'))
    record = result.record
    if params['wait'] == 'concluded' and not client.check_mode \
            and record['outcome'] == 'canceled':
        raise JobFailed(f"job '{record['name']}' did not migrate: {describe(record)}",
                        record['name'], result.records)
    return result.start_output()


def main() -> None:
    run_module(MIGRATION, start)


if __name__ == '__main__':
    main()
