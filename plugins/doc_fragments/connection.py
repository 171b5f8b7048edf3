# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options that say which VM to talk to and where the ledger lives."""

    DOCUMENTATION = r'''
options:
  socket:
    description:
      - Path of the QMP UNIX socket of the QEMU process or qemu-storage-daemon
        (C(-qmp unix:PATH,server=on,wait=off) or C(-chardev socket,...) with C(-mon mode=control)).
      - The socket serves one client at a time, so the modules connect for each operation and
        disconnect promptly.
      - Exactly one of O(socket) and O(domain) is required.
    type: path
  domain:
    description:
      - Name or UUID of a libvirt domain. Its jobs are run through libvirt's own API (never QMP
        passthrough, so the domain is not tainted), and the job records are kept in the domain's
        metadata.
      - A disk (O(vmjobs.qemu.block_job#module:device)) is a target name such as C(vda) or the
        path of the disk's top image.
      - Exactly one of O(socket) and O(domain) is required.
    type: str
  uri:
    description:
      - The libvirt connection URI of O(domain). Defaults to C(qemu:///system).
      - Not with O(socket).
    type: str
  connect_timeout:
    description:
      - Seconds allowed for connecting and for QEMU's greeting.
      - A monitor held by another client sends no greeting; the task then fails with a message
        saying the monitor is busy.
    type: float
    default: 5.0
  ledger_dir:
    description:
      - Directory of the ledger, where the collection keeps job names, parameters and outcomes
        that QEMU does not keep (tombstones of dismissed jobs among them).
      - Defaults to C(/var/lib/vmjobs) for root, else C($XDG_STATE_HOME/vmjobs).
    type: path
  ledger_retention:
    description:
      - Days a tombstone of a dismissed job is kept before it is pruned and its name released.
    type: float
    default: 90.0
requirements:
  - qemu.qmp (Python package) on the hypervisor host, for O(socket)
  - libvirt-python and lxml (Python packages) on the hypervisor host, for O(domain)
  - QEMU 7.2 or newer; libvirt 9.0 or newer for O(domain)
notes:
  - Modules run on the hypervisor host, where the QMP socket or the libvirt daemon is.
  - O(connect_timeout) applies to QMP sockets only.
attributes:
  check_mode:
    description: Predicts RV(ignore:changed) from the job's current state; starts and changes nothing.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
'''
