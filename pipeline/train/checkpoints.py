"""Checkpoints that are either complete or ignored: a `COMPLETE` marker is written (atomically) after
the Trainer has saved adapter, optimizer, scheduler, RNG and trainer state; `latest()` only returns
checkpoints that have it; an unfinished one (killed process, full disk) is renamed aside, never deleted.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

MARKER = "COMPLETE"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def step_of(folder: Path) -> int:
    """The optimizer step a `checkpoint-N` folder was saved at."""
    m = _STEP.match(Path(folder).name)
    return int(m.group(1)) if m else 0


def mark_complete(folder: Path) -> None:
    tmp = folder / f".{MARKER}.tmp"
    tmp.write_text(str(time.time()))
    os.replace(tmp, folder / MARKER)


def complete(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = []
    for p in Path(run_dir).glob("checkpoint-*"):
        m = _STEP.match(p.name)
        if m and (p / MARKER).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest(run_dir: Path) -> Path | None:
    done = complete(run_dir)
    return done[-1] if done else None


def incomplete(run_dir: Path) -> list[Path]:
    """Checkpoint folders without the marker: a save that was killed or ran out of space."""
    return [p for p in Path(run_dir).glob("checkpoint-*") if _STEP.match(p.name) and not (p / MARKER).is_file()]


def set_aside_incomplete(run_dir: Path) -> list[Path]:
    """Rename checkpoints without a marker to checkpoint-N.incomplete-<time> (kept for inspection)."""
    moved = []
    for p in incomplete(run_dir):
        dest = p.with_name(f"{p.name}.incomplete-{int(time.time())}")
        p.rename(dest)
        moved.append(dest)
    return moved


def rotate(run_dir: Path, keep: int) -> None:
    """Delete the oldest complete checkpoints beyond `keep` (only ever complete ones)."""
    done = complete(run_dir)
    for p in done[: max(0, len(done) - keep)]:
        shutil.rmtree(p, ignore_errors=True)
