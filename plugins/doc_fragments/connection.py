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
    type: path
    required: true
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
  - qemu.qmp (Python package) on the hypervisor host
  - QEMU 7.2 or newer
notes:
  - Modules run on the hypervisor host, where the QMP socket is.
attributes:
  check_mode:
    description: Predicts RV(ignore:changed) from the job's current state; starts and changes nothing.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
'''
