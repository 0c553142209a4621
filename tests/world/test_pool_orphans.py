"""Pool workers die with the process that started them, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from worldgen.world.pool import PARENT_CHECK_S


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_their_parent_is_killed() -> None:
    script = textwrap.dedent(
        """
        import time
        from worldgen.world.pool import WorkerPool
        pool = WorkerPool(2)
        print(*pool.start(), flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as parent:
        try:
            assert parent.stdout is not None
            workers = [int(pid) for pid in parent.stdout.readline().split()]
            assert len(workers) == 2
            assert all(_alive(pid) for pid in workers)
            parent.kill()
            parent.wait()
            deadline = time.monotonic() + 10 * PARENT_CHECK_S + 5
            while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
                time.sleep(0.1)
            assert not any(_alive(pid) for pid in workers), "a worker outlived its parent"
        finally:
            if parent.poll() is None:
                parent.kill()
