"""Checks on the qemu-storage-daemons the restore and verify modules start for their jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def no_daemon(ledger_dir: Path) -> None:
    """No job daemon left: no socket or pidfile under ``<ledger_dir>/daemons``."""
    daemons = ledger_dir / 'daemons'
    left = [p for p in daemons.rglob('*') if not p.is_dir()] if daemons.exists() else []
    assert left == [], left


def refused(result: dict[str, Any], *words: str) -> str:
    """A failed result with a one-line message holding each of ``words``; the message."""
    assert result.get('failed'), result
    msg: str = result['msg']
    assert '\n' not in msg and 'Traceback' not in result['raw'], msg
    for word in words:
        assert word in msg, msg
    return msg
