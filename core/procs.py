"""Process ownership: every child we start runs in its own process group, is recorded (pid, pgid, start time,
command) the moment it exists, and is stopped as a whole group, whether or not its leader still lives.

    from core.procs import spawn, stop, group_alive, log_tail
    proc, rec = spawn(["python", "-m", "x"], env={}, log_path=Path("x.log"), on_start=save_record)
    stop(rec, grace_s=10)      # SIGTERM the group, wait, SIGKILL what is left, verify nothing is left
    code = run_owned(["python", "-m", "y"], Path("y.log"))   # wait for it; its group never outlives us

Why groups and not pids: vLLM's API server starts an EngineCore child; if the API server is killed -9, the
EngineCore (GBs of memory) lives on in the same group. Signalling the pid finds nothing; signalling the
group reaches it. Linux never hands out a pid that is still in use as a process-group id, so while any
member of our group lives, the number cannot belong to somebody else; when the leader lives, its start
time (from /proc, recorded at spawn) must match ours, so a reused pid is never signalled.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.settings import REPO_ROOT


@dataclass
class ProcRecord:
    """Who we started: enough to find and stop the whole group later, from another process."""
    pid: int
    pgid: int
    start_ticks: int            # /proc/<pid>/stat starttime (clock ticks after boot): tells a reused pid apart
    cmd: list[str] = field(default_factory=list)
    role: str = ""              # "replica 0", "router", "job 7 supervisor", ...
    started: float = 0.0        # wall clock, for people

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProcRecord | None":
        if not d or not d.get("pid"):
            return None
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# ------------------------------------------------------------------------------------ /proc reading
def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, start ticks) of a process, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2]), int(fields[19])


def alive(pid: int | None) -> bool:
    """True while `pid` runs (a zombie counts as dead)."""
    if not pid:
        return False
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def start_ticks(pid: int) -> int:
    st = _stat(pid)
    return st[2] if st else 0


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st and st[1] == pgid and st[0] != "Z":
            out.append(int(entry.name))
    return out


def ours(rec: ProcRecord | None) -> bool:
    """The recorded group still has members and they are ours (not a reused pid)."""
    if rec is None:
        return False
    leader = _stat(rec.pid)
    if leader is not None and leader[0] != "Z":
        return leader[2] == rec.start_ticks and leader[1] == rec.pgid
    return bool(group_members(rec.pgid))


def group_alive(rec: ProcRecord | None) -> bool:
    return ours(rec)


# ------------------------------------------------------------------------------------ start / stop
def _in_child(cpus: list[int] | None, parent: int | None) -> Callable[[], None] | None:
    """What runs in the child between fork and exec: pin it to `cpus`; with `parent`, have the kernel send it
    SIGTERM when that process dies, however it dies (kill -9 included), and give up at once if it already did."""
    if not cpus and parent is None:
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl if parent is not None else None   # looked up before the fork

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)
    return setup


PR_SET_PDEATHSIG = 1


def spawn(cmd: list[str], env: dict[str, str] | None, log_path: Path | None, cpus: list[int] | None = None,
          role: str = "", cwd: Path | None = None, on_start: Callable[[ProcRecord], None] | None = None,
          inherit_env: bool = True, die_with_parent: bool = False) -> tuple[subprocess.Popen, ProcRecord]:
    """Start `cmd` detached in a new session (so a new process group) with output to `log_path`, never
    through a shell. `on_start(record)` runs right after the fork, before anything waits on the child: the
    caller saves the record there, so an interrupt after this point can always find the group.
    With `cpus`, the child and everything it starts run on those cores only. With `die_with_parent`, the
    child gets SIGTERM when this process dies, even by SIGKILL (Linux's parent-death signal)."""
    log = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
    full_env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    try:
        proc = subprocess.Popen(cmd, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=full_env, start_new_session=True,
                                cwd=str(cwd or REPO_ROOT),
                                preexec_fn=_in_child(cpus, os.getpid() if die_with_parent else None))
    finally:
        if log is not None:
            log.close()  # the child has its own copy
    rec = ProcRecord(proc.pid, proc.pid, start_ticks(proc.pid), list(cmd), role, time.time())
    if on_start is not None:
        try:
            on_start(rec)
        except BaseException:
            stop(rec, grace_s=2)
            raise
    return proc, rec


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all(records: list[ProcRecord | None], grace_s: float = 10.0) -> int:
    """Stop every recorded group at once: SIGTERM, one shared grace period, SIGKILL what is left, then wait
    until no member is left (a few seconds at most). Returns how many groups were still running."""
    live = [r for r in records if ours(r)]
    for r in live:
        _signal_group(r.pgid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline and any(group_members(r.pgid) for r in live):
        time.sleep(0.2)
    for r in live:
        if group_members(r.pgid):
            _signal_group(r.pgid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and any(group_members(r.pgid) for r in live):
        time.sleep(0.1)
    return len(live)


def stop(rec: ProcRecord | None, grace_s: float = 10.0) -> bool:
    """Stop one recorded group; True if it was running."""
    return stop_all([rec], grace_s) > 0


class _Terminated(BaseException):
    """SIGTERM arrived while run_owned waited (a BaseException, so no `except Exception` swallows it)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def run_owned(cmd: list[str], log_path: Path | None, role: str = "", grace_s: float = 5.0) -> int:
    """Run `cmd` in its own process group and wait for its exit code. However the wait ends (the command
    exits, an error, Ctrl-C, SIGTERM to this process), the whole group is stopped first, grandchildren too
    (vLLM's EngineCore and workers outlive a killed parent otherwise). A SIGTERM is re-delivered after the
    cleanup, so this process still ends the way it was asked to. If this process is killed outright (no
    clean-up can run), the kernel sends the command SIGTERM; a command with children of its own calls
    `end_group_on_sigterm()` so that its whole group goes with it."""
    proc, rec = spawn(cmd, None, log_path, role=role, die_with_parent=True)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    terminated = False
    try:
        return proc.wait()
    except _Terminated:
        terminated = True
        raise
    finally:
        stop(rec, grace_s)
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if terminated:
            os.kill(os.getpid(), signal.SIGTERM)


def end_group_on_sigterm() -> None:
    """For a group leader started by run_owned: on SIGTERM (its parent's death, or a stop) take the whole
    process group down with it, children it did not start itself included (vLLM's EngineCore and workers)."""
    def down(*_) -> None:
        os.killpg(os.getpgrp(), signal.SIGKILL)

    signal.signal(signal.SIGTERM, down)


def log_tail(path: str | Path | None, lines: int = 20) -> str:
    """The last `lines` lines of a log (reads at most its last 64 KiB); '' when there is none."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def signal_name(code: int | None) -> str:
    """'killed by SIGKILL' for a negative return code, else 'exit code N'."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
