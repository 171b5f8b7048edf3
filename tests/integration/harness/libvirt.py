"""A private libvirtd (with its virtlogd) for the tests, and domains on it.

The daemons run in a mount + UTS namespace of their own, where fresh directories
under one short root are bind-mounted over /run/libvirt, /var/lib/libvirt,
/var/log/libvirt, /var/cache/libvirt and /etc/libvirt.  So nothing of the
machine's own libvirt is touched, and the daemon's UNIX socket is reachable from
outside at ``<root>/run/libvirt-sock`` (URI ``qemu:///system?socket=...``).
Only the PIDs from the private pidfiles are ever killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .paths import REPO

#: Where QEMU capabilities probed by one run are kept for the next (the probe takes seconds).
CAPS_CACHE = REPO / 'build' / 'libvirt-cache'
BINDS = {'run': '/run/libvirt', 'lib': '/var/lib/libvirt', 'log': '/var/log/libvirt',
         'cache': '/var/cache/libvirt', 'etc': '/etc/libvirt'}
QEMU_CONF = '''user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
namespaces = []
cgroup_controllers = []
remember_owner = 0
'''


def ensure_system() -> None:
    """The users, groups and mount points libvirt's QEMU driver expects (idempotent)."""
    for group in ('kvm', 'libvirt-qemu'):
        if subprocess.run(['getent', 'group', group], capture_output=True, check=False).returncode:
            subprocess.run(['groupadd', '-r', group], check=True, capture_output=True)
    if subprocess.run(['getent', 'passwd', 'libvirt-qemu'], capture_output=True,
                      check=False).returncode:
        subprocess.run(['useradd', '-r', '-g', 'libvirt-qemu', '-G', 'kvm', '-d',
                        '/var/lib/libvirt', '-s', '/usr/sbin/nologin', 'libvirt-qemu'],
                       check=True, capture_output=True)
    for mountpoint in BINDS.values():
        os.makedirs(mountpoint, exist_ok=True)


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != 'Z'


def _kill(pid: int, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class LibvirtHost:
    """One private libvirtd; ``listen`` adds a TCP listener (for migrations)."""

    name: str = 'vjhost'
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix='vjlv-', dir='/tmp')))
    netns: str | None = None
    listen: str | None = None
    port: int = 16509
    migration_address: str | None = None
    #: A directory this host sees its own fresh copy of (``<root>/private`` bind-mounted over
    #: it): disks at the same path on two hosts that share no storage.
    private: Path | None = None
    #: The X.509 directory of pull backups' TLS exports (qemu.conf ``backup_tls_x509_cert_dir``).
    backup_tls_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f'qemu:///system?socket={self.root}/run/libvirt-sock'

    @property
    def tcp_uri(self) -> str:
        return f'qemu+tcp://{self.listen}:{self.port}/system'

    def path(self, key: str) -> Path:
        return self.root / key

    def _configure(self) -> None:
        for key in BINDS:
            self.path(key).mkdir(parents=True, exist_ok=True)
        (self.path('lib') / 'qemu').mkdir(exist_ok=True)
        (self.path('log') / 'qemu').mkdir(exist_ok=True)
        qemu = QEMU_CONF
        if self.migration_address:
            qemu += (f'migration_address = "{self.migration_address}"\n'
                     f'migration_host = "{self.migration_address}"\n')
        if self.backup_tls_dir:
            qemu += f'backup_tls_x509_cert_dir = "{self.backup_tls_dir}"\n'
        (self.path('etc') / 'qemu.conf').write_text(qemu)
        # libvirt refuses a migration to "the same host" (same hostname or host UUID)
        daemon = f'listen_tls = 0\nhost_uuid = "{uuid.uuid4()}"\n'
        if self.listen:
            daemon += (f'listen_tcp = 1\nlisten_addr = "{self.listen}"\ntcp_port = "{self.port}"\n'
                       'auth_tcp = "none"\n')
        (self.path('etc') / 'libvirtd.conf').write_text(daemon)
        (self.path('etc') / 'virtlogd.conf').write_text('')
        seeded = CAPS_CACHE / 'qemu' / 'capabilities'
        if seeded.is_dir():
            shutil.copytree(seeded, self.path('cache') / 'qemu' / 'capabilities',
                            dirs_exist_ok=True)

    def start(self, timeout: float = 60.0) -> None:
        """Start virtlogd (unless it runs) and libvirtd; wait until libvirtd answers."""
        ensure_system()
        if not (self.path('etc') / 'qemu.conf').exists():
            self._configure()
        mounts = dict(BINDS)
        if self.private is not None:
            self.path('private').mkdir(exist_ok=True)
            mounts['private'] = str(self.private)
        binds = ' && '.join(f'mount --bind {self.path(key)} {where}'
                            for key, where in mounts.items())
        logd = ('[ -e /run/libvirt/virtlogd-sock ] || '
                'virtlogd -d -f /etc/libvirt/virtlogd.conf -p /run/libvirt/virtlogd.pid')
        script = (f'{binds} && hostname {self.name} && {{ {logd}; }} && exec libvirtd '
                  '-f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid'
                  + (' -l' if self.listen else ''))
        argv = ['unshare', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script]
        if self.netns:
            argv = ['ip', 'netns', 'exec', self.netns, *argv]
        log = (self.root / 'libvirtd.out').open('ab')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f'libvirtd exited with {self.proc.returncode}: '
                                   f'{self.log_text()}')
            if (self.path('run') / 'libvirt-sock').exists() and \
                    self.virsh('version', check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f'libvirtd did not answer within {timeout}s: {self.log_text()}')
            time.sleep(0.05)

    def log_text(self) -> str:
        path = self.root / 'libvirtd.out'
        return path.read_text(errors='replace') if path.exists() else ''

    def _pid(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.path('run') / name).read_text().strip())
        return None

    def stop_libvirtd(self) -> None:
        """Stop libvirtd only (domains and virtlogd keep running), as for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(FileNotFoundError):
            (self.path('run') / 'libvirt-sock').unlink()

    def restart(self) -> None:
        self.stop_libvirtd()
        self.start()

    def save_caps(self) -> None:
        """Keep the probed QEMU capabilities for the next run."""
        probed = self.path('cache') / 'qemu' / 'capabilities'
        if probed.is_dir() and any(probed.iterdir()):
            CAPS_CACHE.mkdir(parents=True, exist_ok=True)
            shutil.copytree(probed, CAPS_CACHE / 'qemu' / 'capabilities', dirs_exist_ok=True)

    def teardown(self) -> None:
        """Destroy every domain, stop the daemons and the QEMUs they started, remove the root."""
        if self.proc is not None and self.proc.poll() is None:
            for name in self.virsh('list', '--all', '--name', check=False).stdout.split():
                self.virsh('destroy', name, check=False)
                self.virsh('undefine', name, '--checkpoints-metadata', check=False)
        for pidfile in (self.path('run') / 'qemu').glob('*.pid'):
            with contextlib.suppress(OSError, ValueError):
                _kill(int(pidfile.read_text().strip()))
        self.stop_libvirtd()
        pid = self._pid('virtlogd.pid')
        if pid is not None:
            _kill(pid)
        shutil.rmtree(self.root, ignore_errors=True)

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``virsh -c URI args...``; with ``check`` a failure raises with virsh's output."""
        proc = subprocess.run(['virsh', '-c', self.uri, *args], capture_output=True, text=True,
                              timeout=120, check=False)
        if check and proc.returncode:
            raise RuntimeError(f'virsh {" ".join(args)} failed: {proc.stderr or proc.stdout}')
        return proc


@contextlib.contextmanager
def running(host: LibvirtHost) -> Iterator[LibvirtHost]:
    """``host`` started; its probed capabilities kept for later runs; torn down at the end."""
    try:
        host.start()
        yield host
        host.save_caps()
    finally:
        host.teardown()


def domain_xml(name: str, disks: dict[str, Path], cache: str | None = None,
               memory_mib: int = 64) -> str:
    """A guest-less q35 domain (TCG, no graphics) with virtio disks ``{target: image}``:
    qcow2, or raw for an image named ``*.img``.

    ``cache='none'`` lets libvirt migrate it without shared storage being declared.
    """
    mode = f" cache='{cache}'" if cache else ''
    devices = ''.join(
        f"<disk type='file' device='disk'><driver name='qemu' "
        f"type='{'raw' if Path(path).suffix == '.img' else 'qcow2'}'{mode}/>"
        f"<source file='{path}'/><target dev='{target}' bus='virtio'/></disk>"
        for target, path in disks.items())
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>"
            "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>"
            "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
            f"{devices}<controller type='usb' model='none'/><memballoon model='none'/>"
            "</devices></domain>")


def create_domain(host: LibvirtHost, workdir: Path, name: str, disks: dict[str, Path],
                  persistent: bool = False, running: bool = False, cache: str | None = None,
                  memory_mib: int = 64) -> str:
    """Start a transient (``virsh create``) or persistent (define + start) domain, paused."""
    xml = workdir / f'{name}.xml'
    xml.write_text(domain_xml(name, disks, cache, memory_mib))
    paused = [] if running else ['--paused']
    if persistent:
        host.virsh('define', str(xml))
        host.virsh('start', name, *paused)
    else:
        host.virsh('create', str(xml), *paused)
    return name


def taint_messages(host: LibvirtHost, name: str) -> list[str]:
    """The ``Messages:`` lines of ``virsh dominfo`` (taints and deprecations)."""
    out = host.virsh('dominfo', name).stdout
    lines = out.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.startswith('Messages:'):
            found.append(line.split(':', 1)[1].strip())
            found += [rest.strip() for rest in lines[index + 1:] if rest.startswith(' ')]
    return found
