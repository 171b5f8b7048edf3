"""Guest-side I/O through QEMU itself (HMP ``qemu-io``) on the node a device uses now."""

from __future__ import annotations

from .qmp import QMPConnection


def inserted_node(conn: QMPConnection, device: str) -> str:
    """The node currently inserted in qdev ``device`` (changes after a pivot)."""
    for block in conn.cmd('query-block'):
        if block.get('qdev', '').startswith(f'/machine/peripheral/{device}/') and block.get('inserted'):
            return str(block['inserted']['node-name'])
    raise LookupError(f'no device {device} with a medium')


def qemu_io(conn: QMPConnection, node: str, command: str) -> str:
    """Run one qemu-io command on ``node`` inside QEMU; return its output."""
    return str(conn.cmd('human-monitor-command', {'command-line': f'qemu-io {node} "{command}"'}))


def guest_write(conn: QMPConnection, device: str, pattern: int, offset: str, length: str) -> None:
    """Write a byte pattern through the device, as the guest would."""
    out = qemu_io(conn, inserted_node(conn, device), f'write -P {pattern} {offset} {length}')
    if 'error' in out.lower():
        raise AssertionError(out)


def guest_has(conn: QMPConnection, device: str, pattern: int, offset: str, length: str) -> bool:
    """Whether the device reads back ``pattern`` over the range."""
    out = qemu_io(conn, inserted_node(conn, device), f'read -P {pattern} {offset} {length}')
    if 'Pattern verification failed' in out:
        return False
    if 'error' in out.lower():
        raise AssertionError(out)
    return True
