"""Checks on the qemu-storage-daemons the restore and verify modules start for their jobs,
and the backups they read."""

from __future__ import annotations

from collections.abc import Callable
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


def back_up(run_module: Callable[..., dict[str, Any]], socket: Path, ledger_dir: Path,
            workdir: Path, name: str, mode: str) -> dict[str, Any]:
    """Backup ``name`` of every disk (chain ``nightly``) into ``workdir/name``, waited for;
    it must succeed."""
    (workdir / name).mkdir()
    result = run_module('backup', {
        'socket': str(socket), 'ledger_dir': str(ledger_dir), 'name': name, 'mode': mode,
        'bitmap': 'nightly', 'target_dir': str(workdir / name), 'wait': 'concluded',
        'wait_timeout': 30})
    assert result['job']['outcome'] == 'succeeded', result
    return result
