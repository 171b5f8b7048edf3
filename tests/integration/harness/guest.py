"""Guest-side I/O through QEMU itself (HMP ``qemu-io``) on the node a device uses now."""

from __future__ import annotations

from .images import has_pattern
from .qmp import QMPConnection


def _inserted(conn: QMPConnection, device: str) -> dict:
    for block in conn.cmd('query-block'):
        if block.get('qdev', '').startswith(f'/machine/peripheral/{device}/') and block.get('inserted'):
            return dict(block['inserted'])
    raise LookupError(f'no device {device} with a medium')


def inserted_node(conn: QMPConnection, device: str) -> str:
    """The node currently inserted in qdev ``device`` (changes after a pivot)."""
    return str(_inserted(conn, device)['node-name'])


def qemu_io(conn: QMPConnection, node: str, command: str) -> str:
    """Run one qemu-io command on ``node`` inside QEMU; return HMP's reply.

    qemu-io's own output goes to QEMU's stdout (the daemon's log); the reply is
    empty unless the command could not run (e.g. "Permission conflict").
    """
    return str(conn.cmd('human-monitor-command', {'command-line': f'qemu-io {node} "{command}"'}))


def guest_write(conn: QMPConnection, device: str, pattern: int, offset: str, length: str) -> None:
    """Write a byte pattern through the device, as the guest would, and flush it."""
    node = inserted_node(conn, device)
    for command in (f'write -P {pattern} {offset} {length}', 'flush'):
        reply = qemu_io(conn, node, command)
        if reply.strip():
            raise AssertionError(f'qemu-io {command} on {node}: {reply.strip()}')


def guest_has(conn: QMPConnection, device: str, pattern: int, offset: str, length: str) -> bool:
    """Whether the image the device uses now reads back ``pattern`` over the range.

    Read from outside (qemu-io -r -U on the image file and its backing chain), since
    qemu-io inside QEMU prints its verdict to QEMU's stdout, not to the monitor.
    """
    image = _inserted(conn, device)['image']
    return has_pattern(image['filename'], pattern, offset, length, image['format'])


def device_write(conn: QMPConnection, device: str, pattern: int, offset: str, length: str) -> None:
    """Write a byte pattern through the device's own BlockBackend (HMP ``qemu-io -d``), as the
    guest does: above any filter a job inserted (a mirror's, which tracks the writes).
    ``device`` is the qdev id of a virtio-blk-pci disk (its backend holds the BlockBackend)."""
    backend = f'/machine/peripheral/{device}/virtio-backend'
    for command in (f'write -P {pattern} {offset} {length}', 'flush'):
        reply = str(conn.cmd('human-monitor-command',
                             {'command-line': f'qemu-io -d {backend} "{command}"'}))
        if reply.strip():
            raise AssertionError(f'qemu-io -d {backend} {command}: {reply.strip()}')
