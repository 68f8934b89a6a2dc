"""Files that are never half-written and folders that never vanish before their replacement is in place.

    from core.files import publish, write_atomic, staging_dir, FileLock
    tmp = staging_dir(parent, "adapter")        # hidden .adapter.partial-<pid> folder next to the target
    ... write into tmp ...
    publish(tmp, parent / "adapter")             # rename into place; an older one is removed only after
    write_atomic(path, text)                     # temp file + os.replace
    with FileLock(path, what="run x"):           # one holder at a time (flock); others get LockBusy at once
        ...
    write_record(path, text)                     # write_atomic; on a full disk, overwritten in place (small records)
    if no_space(exc, folder): raise NoSpaceError(f"no space left on device while writing {path}: ...") from None

`publish` is the one helper every stage uses to put an output (adapter, prepared data, export, embedded
asset) in place: the new folder appears under its final name in one rename; the previous one is moved
aside first and deleted only after the rename succeeded.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from pathlib import Path

from core.errors import SqlgenieError


class LockBusy(SqlgenieError):
    """Another process holds the lock (named with its pid)."""


class NoSpaceError(SqlgenieError):
    """The disk filled up while an output was written (named, with what to free and how to go on)."""


# How the OS's "disk full" reads once a library has re-raised it as its own error (safetensors, pyarrow).
_NO_SPACE_WORDS = ("no space left on device", "os error 28", "disk quota exceeded", "storagefull")


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _nearly_full(folder: Path) -> bool:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return free < min(1 << 20, total // 100)


def no_space(exc: BaseException, folder: Path | None = None) -> bool:
    """True if `exc` came from a full disk: ENOSPC / EDQUOT anywhere in its chain, or the OS's words for it in a
    library's message; or, for an I/O-like error (OSError, RuntimeError) while `folder` was written, its
    filesystem is full now (torch.save loses the cause: "unexpected pos 576 vs 534")."""
    io_like = False
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(w in str(e).lower() for w in _NO_SPACE_WORDS):
            return True
        io_like = io_like or (isinstance(e, (OSError, RuntimeError)) and not isinstance(e, SqlgenieError))
    return io_like and folder is not None and _nearly_full(folder)


def failed_path(exc: BaseException) -> Path | None:
    """The file an OSError in `exc`'s chain names (open() names it; a failed write() does not)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.filename:
            return Path(e.filename)
    return None


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_record(path: Path, text: str) -> None:
    """`write_atomic` for a small record that must reach the disk even when it is full (a run's status after
    a write failed for lack of space): then the temp file is removed and the existing file is overwritten in
    place, which needs no new blocks as long as `text` is no longer than what the file holds now."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_atomic(path, text)
        return
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if not (no_space(e) and path.is_file()):
            raise
    data = text.encode()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_dir(parent: Path, name: str) -> Path:
    """An empty hidden folder `.NAME.partial-<pid>` in `parent`, on the same filesystem as the target."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def publish(tmp: Path, final: Path, keep_existing: bool = False) -> Path:
    """Rename a finished folder into place. An existing `final` is moved aside first and removed only after
    the rename (keep_existing: leave the existing one and discard `tmp`: for outputs built once)."""
    tmp, final = Path(tmp), Path(final)
    if final.exists() and keep_existing:
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.replaced-{os.getpid()}-{int(time.time() * 1000)}")
        final.rename(old)
    try:
        tmp.rename(final)
    except BaseException:
        if old is not None and not final.exists():
            old.rename(final)  # put the previous one back: nothing is lost
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


class FileLock:
    """An exclusive advisory lock on `path` (created if missing) held for the life of the process that
    holds it: the kernel releases it when the process dies, so a crash never leaves a stale lock.
    `wait_s` > 0 waits for it; otherwise a held lock raises LockBusy naming the holder's pid."""

    def __init__(self, path: Path, what: str = "", wait_s: float = 0.0):
        self.path = Path(path)
        self.what = what or str(path)
        self.wait_s = wait_s
        self.fd: int | None = None

    def holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def acquire(self) -> "FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    pid = self.holder()
                    raise LockBusy(f"{self.what} is in use by another process"
                                   + (f" (pid {pid})" if pid else "") + ": wait for it to finish or stop it") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def locked(self) -> bool:
        """True if some process holds it now (a probe: takes and releases it when free)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
