"""Process helpers shared by the job runner and the serving launcher: liveness, stopping process
groups, reading the end of a log.

    from pipeline.procs import alive, stop_groups, log_tail
    stop_groups([pid1, pid2], grace_s=10)   # SIGTERM every group, wait once, SIGKILL what is left
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def alive(pid: int | None) -> bool:
    """True while `pid` runs (a zombie child of ours counts as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_groups(pids: list[int | None], grace_s: float = 10.0) -> int:
    """SIGTERM the process group of every live pid at once, wait (one grace period in total) for them
    to exit, then SIGKILL the groups still there. Returns how many were running."""
    live = [p for p in pids if alive(p)]
    for p in live:
        try:
            os.killpg(p, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.time() + grace_s
    while time.time() < deadline and any(alive(p) for p in live):
        time.sleep(0.2)
    for p in live:
        if alive(p):
            try:
                os.killpg(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return len(live)


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last `lines` lines of a log (reads at most its last 64 KiB); '' when there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
