"""Two "hosts" on one machine: network namespaces joined by a veth pair (needs root)."""

from __future__ import annotations

import dataclasses
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@dataclasses.dataclass(frozen=True)
class Host:
    """One network namespace with one address on the shared /30."""

    netns: str
    address: str

    @property
    def prefix(self) -> list[str]:
        """Run a command inside this host's network namespace."""
        return ['ip', 'netns', 'exec', self.netns]


def _ip(*args: str) -> None:
    subprocess.run(['ip', *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """Create two namespaces and a veth pair between them; remove them afterwards.

    Names and the 10.213.N.0/30 subnet are random so that parallel runs do not collide;
    only what this function created is removed.
    """
    tag = f'{random.randrange(1 << 24):06x}'
    subnet = random.randrange(256)
    hosts = (Host(f'vj{tag}a', f'10.213.{subnet}.1'), Host(f'vj{tag}b', f'10.213.{subnet}.2'))
    created: list[str] = []
    try:
        for host in hosts:
            _ip('netns', 'add', host.netns)
            created.append(host.netns)
        _ip('link', 'add', f'vj{tag}a', 'netns', hosts[0].netns, 'type', 'veth',
            'peer', 'name', f'vj{tag}b', 'netns', hosts[1].netns)
        for host, dev in zip(hosts, (f'vj{tag}a', f'vj{tag}b')):
            _ip('-n', host.netns, 'addr', 'add', f'{host.address}/30', 'dev', dev)
            _ip('-n', host.netns, 'link', 'set', dev, 'up')
            _ip('-n', host.netns, 'link', 'set', 'lo', 'up')
        yield hosts
    finally:
        for netns in reversed(created):  # deleting a namespace deletes its end of the veth
            subprocess.run(['ip', 'netns', 'del', netns], capture_output=True, timeout=30,
                           check=False)
