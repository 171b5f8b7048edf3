# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data path's reference: a plain qemu.qmp script doing one blockdev-backup.

``python bench/plain_backup.py SOCKET DEVICE TARGET SIZE JOB_ID``: creates the raw
target with qemu-img, attaches it, runs blockdev-backup (sync=full) and waits for the
job to conclude, then dismisses it and detaches the target.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from qemu.qmp import QMPClient


async def backup(socket: str, device: str, target: str, job: str) -> None:
    client = QMPClient('plain')
    await client.connect(socket)
    try:
        await client.execute('blockdev-add', {'driver': 'file', 'node-name': 'plainf',
                                              'filename': target})
        await client.execute('blockdev-add', {'driver': 'raw', 'node-name': 'plaint',
                                              'file': 'plainf'})
        with client.listener('JOB_STATUS_CHANGE') as listener:
            await client.execute('blockdev-backup', {'job-id': job, 'device': device,
                                                     'target': 'plaint', 'sync': 'full',
                                                     'auto-dismiss': False})
            async for event in listener:
                data = event.get('data') or {}
                if event['event'] == 'JOB_STATUS_CHANGE' and data.get('id') == job and \
                        data.get('status') == 'concluded':
                    break
        jobs = {j['id']: j for j in await client.execute('query-jobs')}
        if jobs[job].get('error'):
            raise SystemExit(f"backup failed: {jobs[job]['error']}")
        await client.execute('job-dismiss', {'id': job})
        await client.execute('blockdev-del', {'node-name': 'plaint'})
        await client.execute('blockdev-del', {'node-name': 'plainf'})
    finally:
        await client.disconnect()


if __name__ == '__main__':
    SOCKET, DEVICE, TARGET, SIZE, JOB = sys.argv[1:6]
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'raw', TARGET, SIZE], check=True)
    asyncio.run(backup(SOCKET, DEVICE, TARGET, JOB))
