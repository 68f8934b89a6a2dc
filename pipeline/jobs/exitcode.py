"""Run a command and write its exit code to a file when it ends, so a job's outcome outlives its supervisor.

    python -m pipeline.jobs.exitcode EXIT_FILE -- python -m pipeline train --config ...

Started by the job supervisor in the job's process group; SIGTERM/SIGINT are passed on to the command. The
command's pid is written beside EXIT_FILE (stage.pid) the moment it exists, so the supervisor can still wait
for the stage and get its exit code if this runner is killed first.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from core.files import write_atomic


def stage_pid_file(exit_file: str | Path) -> Path:
    """Where the runner records the pid of the command it runs."""
    return Path(exit_file).with_name("stage.pid")


def wait_forwarding(child: subprocess.Popen) -> int:
    """Wait for `child`, passing SIGTERM/SIGINT on to it (a cancel lets the stage clean up); its exit code."""

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


def main(argv: list[str]) -> int:
    path, sep, cmd = argv[0], argv[1], argv[2:]
    if sep != "--" or not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    child = subprocess.Popen(cmd)
    write_atomic(stage_pid_file(path), str(child.pid))
    code = wait_forwarding(child)
    write_atomic(path, str(code))
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
