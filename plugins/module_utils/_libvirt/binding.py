# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt binding: its import, the flags and error codes the collection uses, and
libvirt's errors as the collection's.

This is a private module: its API may change between any two releases.
The numbers are libvirt's own (stable ABI), so that pure code and tests need no
libvirt-python.
"""

from __future__ import annotations

import typing as t

from .._errors import BackendError

try:
    import libvirt as libvirt  # noqa: PLC0414  # pylint: disable=useless-import-alias  # re-exported
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR: ImportError | None = None
except ImportError as err:  # pragma: no cover - reported by the modules
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = err

Event = dict[str, t.Any]

#: libvirt's block job types (virDomainBlockJobType) by number.
BLOCK_JOB_TYPES = {1: 'pull', 2: 'copy', 3: 'commit', 4: 'active-commit', 5: 'backup'}
#: libvirt's block job event statuses (virConnectDomainEventBlockJobStatus).
BLOCK_JOB_STATUSES = {0: 'completed', 1: 'failed', 2: 'canceled', 3: 'ready'}
#: virDomainJobOperation of ``jobStats``' ``operation``.
DOMAIN_JOB_OPERATIONS = {0: 'unknown', 1: 'start', 2: 'save', 3: 'restore',
                         4: 'migration-in', 5: 'migration-out', 6: 'snapshot',
                         7: 'snapshot-revert', 8: 'dump', 9: 'backup', 10: 'snapshot-delete'}

# Flag values from libvirt's public headers (stable ABI), so that the pure modules
# and their tests never need the binding.
BLOCK_JOB_INFO_BANDWIDTH_BYTES = 1
BLOCK_JOB_SPEED_BANDWIDTH_BYTES = 1
BLOCK_JOB_ABORT_ASYNC = 1
BLOCK_JOB_ABORT_PIVOT = 2
BLOCK_PULL_BANDWIDTH_BYTES = 1 << 6
BLOCK_REBASE_BANDWIDTH_BYTES = 1 << 6
BLOCK_COMMIT_ACTIVE = 1 << 2
BLOCK_COMMIT_BANDWIDTH_BYTES = 1 << 4
BLOCK_COPY_SHALLOW = 1
BLOCK_COPY_REUSE_EXT = 2
BACKUP_BEGIN_REUSE_EXTERNAL = 1
BLOCK_COPY_TRANSIENT_JOB = 4
BLOCK_COPY_SYNCHRONOUS_WRITES = 8
JOB_STATS_COMPLETED = 1
JOB_STATS_KEEP_COMPLETED = 2
METADATA_ELEMENT = 2
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
XML_INACTIVE = 2
MIGRATE_LIVE = 1
MIGRATE_PEER2PEER = 2
MIGRATE_PERSIST_DEST = 8
MIGRATE_UNDEFINE_SOURCE = 16
MIGRATE_PAUSED = 32
MIGRATE_NON_SHARED_DISK = 64
MIGRATE_AUTO_CONVERGE = 1 << 13
MIGRATE_UNSAFE = 1 << 9
MIGRATE_POSTCOPY = 1 << 15
MIGRATE_PARALLEL = 1 << 17
MIGRATE_COMPRESSED = 1 << 11
MIGRATE_TLS = 1 << 16

#: Error codes (virErrorNumber) the collection tells apart.
ERR_NO_DOMAIN = 42
ERR_NO_DOMAIN_METADATA = 80
ERR_NO_SUPPORT = 3
ERR_OPERATION_INVALID = 55
#: Readable names of the error codes seen most, for messages.
ERROR_NAMES = {1: 'VIR_ERR_INTERNAL_ERROR', 3: 'VIR_ERR_NO_SUPPORT', 8: 'VIR_ERR_INVALID_ARG',
               9: 'VIR_ERR_OPERATION_FAILED', 38: 'VIR_ERR_SYSTEM_ERROR',
               42: 'VIR_ERR_NO_DOMAIN', 55: 'VIR_ERR_OPERATION_INVALID',
               68: 'VIR_ERR_OPERATION_TIMEOUT', 80: 'VIR_ERR_NO_DOMAIN_METADATA',
               83: 'VIR_ERR_BLOCK_COPY_ACTIVE', 84: 'VIR_ERR_OPERATION_UNSUPPORTED',
               86: 'VIR_ERR_AGENT_UNRESPONSIVE', 1 << 30: 'VIR_ERR_UNKNOWN'}


def error_name(code: int | None) -> str:
    """``VIR_ERR_...`` for a libvirt error code (the number when unknown)."""
    if code is None:
        return 'VIR_ERR_UNKNOWN'
    if libvirt is not None:
        for name in dir(libvirt):
            if name.startswith('VIR_ERR_') and getattr(libvirt, name) == code and \
                    name not in ('VIR_ERR_NONE', 'VIR_ERR_WARNING', 'VIR_ERR_ERROR'):
                return name
    return ERROR_NAMES.get(code, f'VIR_ERR_{code}')


def translate(command: str, err: Exception) -> BackendError:
    """A :class:`BackendError` from a ``libvirtError``: code name and libvirt's own text."""
    code = getattr(err, 'get_error_code', lambda: None)()
    text = getattr(err, 'get_error_message', lambda: None)() or str(err)
    error = BackendError(command, error_name(code), text)
    error.code = code  # type: ignore[attr-defined]
    return error


def quiet(_ctx: object, _error: object) -> None:
    """libvirt prints every error to stderr unless a handler takes them."""
