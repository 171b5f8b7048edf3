# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layout of a stored ledger record, its versions, and how older ones are read.

This is a private module: its API may change between any two releases.
Nothing here does I/O.

A record in memory is flat (the keys of ``LedgerEntry``, see ``_model/shapes``).
Stored, the keys only one backend writes sit in a sub-record named after it
(``qmp``, ``libvirt``; :data:`~.._model.shapes.BACKEND_KEYS`), beside the common ones.

Schemas:

- 1 (0.1.0, which wrote no ``schema``): flat; a single-disk start's file in ``created_file``;
- 2: flat; every created file in ``created_files``;
- 3: the backend keys in their sub-records.

Older records are upgraded when read and stored in the current schema by the next write.
"""

from __future__ import annotations

import typing as t

from .._errors import LedgerError
from .._model.shapes import BACKEND_KEYS

#: The schema of the records this release writes.
SCHEMA = 3
Record = dict[str, t.Any]


def normalise(record: Record) -> Record:
    """``record`` with the files a start created in ``created_files`` only.

    Schema 1 (0.1.0) kept a single-disk start's file in ``created_file`` and a
    multi-disk backup's in ``created_files``; a start may still note either.
    """
    if 'created_file' not in record:
        return record
    record = dict(record)
    created = [record.pop('created_file'), *(record.get('created_files') or [])]
    record['created_files'] = list(dict.fromkeys(p for p in created if p))
    return record


def flatten(record: Record) -> Record:
    """A stored record of schema 3 as it is used: its sub-records' keys beside the others."""
    flat = {key: value for key, value in record.items() if key not in BACKEND_KEYS}
    for backend in BACKEND_KEYS:
        sub = record.get(backend)
        if isinstance(sub, dict):
            flat.update(sub)
    return flat


def upgrade(record: t.Any, where: str) -> Record:
    """A record read from the ledger, flat and in the current schema.

    :param where: the file (or domain) the record came from, for messages.
    :raise LedgerError: not a job record, or written by a newer release.
    """
    if not isinstance(record, dict) or not isinstance(record.get('name'), str):
        raise LedgerError(f'ledger record {where} is damaged: it holds no job record')
    schema = record.get('schema', 1)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise LedgerError(f"job '{record['name']}': ledger record {where} has schema {schema!r}, "
                          f'newer than this release reads ({SCHEMA}); upgrade vmjobs.qemu',
                          record['name'])
    if schema >= 3:
        record = flatten(record)
    return dict(normalise(record), schema=SCHEMA)


def stored(record: Record) -> Record:
    """A flat record as it is written: the keys of one backend in its sub-record."""
    out = {key: value for key, value in record.items()
           if not any(key in keys for keys in BACKEND_KEYS.values())}
    for backend, keys in BACKEND_KEYS.items():
        sub = {key: value for key, value in record.items() if key in keys}
        if sub:
            out[backend] = sub
    return out
