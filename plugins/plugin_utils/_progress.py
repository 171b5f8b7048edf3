# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress lines for jobs being waited on (controller side, pure).

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import dataclasses
import typing as t

Record = dict[str, t.Any]
UNITS = ('B', 'KiB', 'MiB', 'GiB', 'TiB')


def size(value: float | None) -> str:
    """``1.5 GiB`` style text for a byte count."""
    if value is None:
        return '?'
    number = float(value)
    for unit in UNITS:
        if abs(number) < 1024 or unit == UNITS[-1]:
            return f'{number:.0f} {unit}' if unit == 'B' else f'{number:.1f} {unit}'
        number /= 1024
    raise AssertionError('unreachable')


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h10m``."""
    whole = round(seconds)
    if whole < 60:
        return f'{whole}s'
    if whole < 3600:
        return f'{whole // 60}m{whole % 60:02d}s'
    return f'{whole // 3600}h{whole % 3600 // 60:02d}m'


@dataclasses.dataclass
class Seen:
    """What was last seen of one job."""

    at: float
    status: str
    current: int | None


class Tracker:
    """Turns successive records of the jobs waited on into progress lines.

    The rate is the one QEMU reports (migrations) or else the progress made since the
    previous record of the same job; the ETA follows from it.
    """

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}

    def lines(self, records: t.Iterable[Record], now: float) -> list[str]:
        """One line per job; status changes are spelled out."""
        out = []
        for record in records:
            name, status = str(record.get('name')), record.get('status') or '?'
            progress = record.get('progress') or {}
            current, total = progress.get('current'), progress.get('total')
            before = self.seen.get(name)
            self.seen[name] = Seen(now, status, current)
            text = f'{name}: {status}'
            if before is not None and before.status != status:
                text = f'{name}: {before.status} -> {status}'
            if record.get('outcome'):
                error = f": {record['error']}" if record.get('error') else ''
                out.append(f"{text} ({record['outcome']}{error})")
                continue
            if progress.get('percent') is not None:
                text += f" {progress['percent']:.1f}% {size(current)}/{size(total)}"
            rate = progress.get('rate')
            if rate is None and before is not None and before.current is not None \
                    and current is not None and now > before.at:
                rate = max(0.0, (current - before.current) / (now - before.at))
            if rate:
                text += f' {size(rate)}/s'
                left = progress.get('remaining')
                if left is None and total is not None and current is not None:
                    left = total - current
                if left is not None:
                    text += f' ETA {duration(left / rate)}'
            out.append(text)
        return out
