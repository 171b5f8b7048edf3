"""A libvirt domain of a test, and the collection's modules run against it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from .ansible import play_steps
from .libvirt import LibvirtHost, taint_messages


class Domain:
    """A domain of the test and the modules run against it."""

    def __init__(self, host: LibvirtHost, workdir: Path, run_module: Callable[..., dict[str, Any]],
                 name: str) -> None:
        self.host = host
        self.workdir = workdir
        self.name = name
        self._run = run_module
        self._plays = 0
        self.stopped = False
        #: The test itself wrote through the monitor (HMP passthrough taints the domain).
        self.monitor_used = False

    def connection(self) -> dict[str, str]:
        return {'domain': self.name, 'uri': self.host.uri,
                'ledger_dir': str(self.workdir / 'ledger')}

    def run(self, module: str, check: bool = False, **args: Any) -> dict[str, Any]:
        return self._run(module, dict(self.connection(), **args), check)

    def play(self, *steps: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Run several module calls in one playbook (one ansible start-up); their results.

        A failing step does not stop the play; its result says ``failed``.
        """
        self._plays += 1
        return play_steps(self.workdir, self.connection(), steps,
                          self.workdir / f'{self.name}-play{self._plays}.json')

    def ok(self, module: str, **args: Any) -> dict[str, Any]:
        result = self.run(module, **args)
        assert not result['failed'], result
        return result

    def xml(self, inactive: bool = False) -> Any:
        args = ['dumpxml', self.name] + (['--inactive'] if inactive else [])
        return etree.fromstring(self.host.virsh(*args).stdout.encode())

    def source(self, target: str, inactive: bool = False) -> str:
        disk = self.xml(inactive).xpath(f"devices/disk[target/@dev='{target}']")[0]
        return disk.find('source').get('file')

    def chain(self, target: str) -> list[str]:
        disk = self.xml().xpath(f"devices/disk[target/@dev='{target}']")[0]
        return [disk.find('source').get('file')] + [
            s.get('file') for s in disk.xpath('.//backingStore/source')]

    def device_write(self, target: str, pattern: int, offset: int | str, length: int | str) -> None:
        """Write a byte pattern through disk ``target``'s device, as the guest does, and flush.

        HMP ``qemu-io -d`` on the device's BlockBackend (above any filter a job inserted),
        passed through libvirt. That taints the domain, so the modules' own taint check is
        made before the first such write and not after.
        """
        if not self.monitor_used:
            self.assert_untainted()
            self.monitor_used = True
        alias = self.xml().xpath(f"devices/disk[target/@dev='{target}']/alias/@name")[0]
        backend = f'/machine/peripheral/{alias}/virtio-backend'
        for command in (f'write -P {pattern} {offset} {length}', 'flush'):
            reply = self.host.virsh('qemu-monitor-command', self.name, '--hmp',
                                    f'qemu-io -d {backend} "{command}"').stdout
            if reply.strip():
                raise AssertionError(f'qemu-io -d {backend} {command}: {reply.strip()}')

    def stop(self) -> None:
        """Shut QEMU down (it flushes its caches), to read the images from outside."""
        self.assert_untainted()
        self.host.virsh('destroy', self.name, '--graceful')
        self.stopped = True

    def assert_untainted(self) -> None:
        if self.monitor_used:
            return  # checked before the test's own passthrough
        messages = ' '.join(taint_messages(self.host, self.name))
        assert 'custom monitor' not in messages and 'custom-monitor' not in messages, messages
