# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live migration of a libvirt domain: ``migrateToURI3`` with typed parameters.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from ._backend import Note, Record
from ._errors import InvalidArgument
from ._libvirt import Connection, Domain


def start(conn: Connection, domain: Domain, name: str, params: dict[str, t.Any],
          note: Note) -> None:
    """Start the outgoing migration ``name``.

    :raise InvalidArgument: not available yet.
    """
    raise InvalidArgument(f"job '{name}': migrations of libvirt domains are not available yet",
                          name)


def record(domain: Domain, entry: Record, completed: list[Record]) -> Record | None:
    """The record of the domain's migration if ``entry`` started it."""
    return None


def apply_verb(domain: Domain, name: str, verb: str, **arguments: t.Any) -> None:
    """Apply a verb to the domain's migration."""
    raise InvalidArgument(f"job '{name}': migrations of libvirt domains are not available yet",
                          name)


def witness(entry: Record) -> Record | None:
    """How a migration ended, once the domain has left."""
    return None
