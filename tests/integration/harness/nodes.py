"""Block node specs (JSON ``--blockdev`` arguments, so any path is safe)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BlockdevSpec = dict[str, Any]


def image_nodes(node: str, path: str | Path, fmt: str = 'qcow2', file_node: str | None = None) -> list[BlockdevSpec]:
    """A protocol node ``<node>-file`` over ``path`` and a format node ``node`` on top."""
    file_node = file_node or f'{node}-file'
    return [
        {'driver': 'file', 'filename': str(path), 'node-name': file_node},
        {'driver': fmt, 'file': file_node, 'node-name': node},
    ]


def blockdev_args(option: str, specs: list[BlockdevSpec]) -> list[str]:
    """``[option, json, option, json, ...]``"""
    return [arg for spec in specs for arg in (option, json.dumps(spec))]


def monitor_args(workdir: Path, name: str, mon_option: str, mode: str | None) -> list[str]:
    """Two QMP monitors: ``<name>.sock`` (collection) and ``<name>-obs.sock`` (test)."""
    args: list[str] = []
    for suffix in ('', '-obs'):
        chardev = f'mon{suffix or "-main"}'
        path = workdir / f'{name}{suffix}.sock'
        args += ['--chardev', f'socket,id={chardev},path={path},server=on,wait=off',
                 mon_option, f'chardev={chardev}' + (f',mode={mode}' if mode else '')]
    return args
