"""A second "host" for migrations: a network namespace joined to the root one by a veth pair."""

from __future__ import annotations

import dataclasses
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@dataclasses.dataclass(frozen=True)
class Link:
    """The namespace, and the addresses of both ends of the veth pair (a private /30)."""

    netns: str
    local: str
    remote: str


def _ip(*args: str) -> None:
    subprocess.run(['ip', *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def remote_namespace() -> Iterator[Link]:
    """Create a namespace with one end of a veth pair (the other in the root namespace).

    Names and the 10.214.N.0/30 subnet are random so that parallel runs do not collide;
    only what this function created is removed (deleting the namespace removes the pair).
    """
    tag = f'{random.randrange(1 << 24):06x}'
    subnet = random.randrange(256)
    link = Link(f'vjlv{tag}', f'10.214.{subnet}.1', f'10.214.{subnet}.2')
    outer, inner = f'vjl{tag}o', f'vjl{tag}i'
    _ip('netns', 'add', link.netns)
    try:
        _ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', link.netns)
        _ip('addr', 'add', f'{link.local}/30', 'dev', outer)
        _ip('link', 'set', outer, 'up')
        _ip('-n', link.netns, 'addr', 'add', f'{link.remote}/30', 'dev', inner)
        _ip('-n', link.netns, 'link', 'set', inner, 'up')
        _ip('-n', link.netns, 'link', 'set', 'lo', 'up')
        yield link
    finally:
        subprocess.run(['ip', 'link', 'del', outer], capture_output=True, timeout=30,
                       check=False)
        subprocess.run(['ip', 'netns', 'del', link.netns], capture_output=True, timeout=30,
                       check=False)
