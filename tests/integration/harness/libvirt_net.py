"""A second "host" for migrations: a network namespace joined to the root one by veth pairs.

libvirtd talks to libvirtd over one pair; migration streams go over a second one, which
a test can cut (``held_migrations``) without cutting libvirtd off.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .libvirt import LibvirtHost


@dataclasses.dataclass(frozen=True)
class Link:
    """The namespace; the addresses of both ends of the control pair (a private /30); the
    destination's address on the migration pair, and the name of that pair's end in the
    namespace."""

    netns: str
    local: str
    remote: str
    migration: str
    migration_device: str


def _ip(*args: str) -> str:
    return subprocess.run(['ip', *args], check=True, capture_output=True, text=True,
                          timeout=30).stdout


def _mac(*where: str) -> str:
    return str(json.loads(_ip('-j', *where))[0]['address'])


def _pair(netns: str, outer: str, inner: str, local: str, remote: str) -> None:
    """A veth pair ``outer`` (root namespace, ``local``) - ``inner`` (``netns``, ``remote``).

    The neighbours are fixed (no ARP), so that while ``inner`` is down packets are dropped
    silently on the way, and TCP resends them once it is up again.
    """
    _ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', netns)
    _ip('addr', 'add', f'{local}/30', 'dev', outer)
    _ip('-n', netns, 'addr', 'add', f'{remote}/30', 'dev', inner)
    _ip('link', 'set', outer, 'up')
    _ip('-n', netns, 'link', 'set', inner, 'up')
    _ip('neigh', 'replace', remote, 'lladdr', _mac('-n', netns, 'link', 'show', inner),
        'dev', outer, 'nud', 'permanent')
    _ip('-n', netns, 'neigh', 'replace', local, 'lladdr', _mac('link', 'show', outer),
        'dev', inner, 'nud', 'permanent')


@contextmanager
def remote_namespace() -> Iterator[Link]:
    """Create a namespace with two veth pairs to the root namespace.

    Names and the 10.214.N.0/30 and 10.215.N.0/30 subnets are random so that parallel
    runs do not collide; only what this function created is removed (deleting the
    namespace removes the pairs).
    """
    tag = f'{random.randrange(1 << 24):06x}'
    subnet = random.randrange(256)
    link = Link(f'vjlv{tag}', f'10.214.{subnet}.1', f'10.214.{subnet}.2',
                f'10.215.{subnet}.2', f'vjm{tag}i')
    outers = [f'vjl{tag}o', f'vjm{tag}o']
    _ip('netns', 'add', link.netns)
    try:
        _pair(link.netns, outers[0], f'vjl{tag}i', link.local, link.remote)
        _pair(link.netns, outers[1], link.migration_device, f'10.215.{subnet}.1', link.migration)
        _ip('-n', link.netns, 'link', 'set', 'lo', 'up')
        yield link
    finally:
        for outer in outers:
            subprocess.run(['ip', 'link', 'del', outer], capture_output=True, timeout=30,
                           check=False)
        subprocess.run(['ip', 'netns', 'del', link.netns], capture_output=True, timeout=30,
                       check=False)


def _migration_connected(link: Link) -> bool:
    """Whether a TCP connection to the destination's migration address is established
    (``/proc/net/tcp`` of the root namespace: state 01; addresses in little-endian hex)."""
    wanted = ''.join(f'{int(part):02X}' for part in reversed(link.migration.split('.')))
    with open('/proc/net/tcp', encoding='ascii') as table:
        next(table)
        for line in table:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if remote.split(':')[0] == wanted and state == '01':
                return True
    return False


@contextmanager
def held_migrations(link: Link, timeout: float = 60.0) -> Iterator[Callable[[], None]]:
    """Hold the next migration stream to the other "host" as soon as it is connected.

    libvirtd connects the stream itself while it holds the domain, so the connection
    must be made; the moment it is established, the migration pair's end in the
    namespace goes down. What QEMU sends from then on is dropped on the way (libvirtd's
    own connection passes), so the migration keeps running, without moving a byte, for
    as long as the test needs. Start it slow (``bandwidth``) so that it is still running
    when that happens. Yields ``release()``, which brings the link up again; TCP then
    resends what was dropped. Released at the end in any case.
    """
    done = threading.Event()

    def hold() -> None:
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            if _migration_connected(link):
                _ip('-n', link.netns, 'link', 'set', link.migration_device, 'down')
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=hold, daemon=True)
    watcher.start()

    def release() -> None:
        done.set()
        watcher.join()
        _ip('-n', link.netns, 'link', 'set', link.migration_device, 'up')
    try:
        yield release
    finally:
        release()


@contextmanager
def libvirt_hosts(link: Link,
                  private: Path | None = None) -> Iterator[tuple[LibvirtHost, LibvirtHost]]:
    """Two private libvirtd "hosts": the source in the root namespace, the destination in
    ``link``'s; ``private`` is a directory the destination sees a fresh copy of (its own
    disks at the same paths). Torn down afterwards."""
    source = LibvirtHost(name='vjsrc')
    dest = LibvirtHost(name='vjdst', netns=link.netns, listen=link.remote,
                       migration_address=link.migration, private=private)
    try:
        source.start()
        dest.start()
        yield source, dest
    finally:
        dest.teardown()
        source.teardown()
