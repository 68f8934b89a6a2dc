"""Job store CLI: python -m pipeline.jobs list | submit KIND CONFIG.yaml [--gpus 0,1] | cancel ID | rerun ID | tail ID"""
from __future__ import annotations

import sys
import time
from pathlib import Path

COMMANDS = ("list", "submit", "cancel", "rerun", "tail")


def act(argv: list[str]) -> None:
    from pipeline.jobs import JobStore, log_tail

    store = JobStore()
    cmd = argv[0] if argv else "list"
    if cmd == "list":
        store.reconcile()
        for j in store.list():
            d = j.duration()
            print(f"{j.id:>4} {j.kind:<9} {j.status:<10} {j.name:<24} gpus={j.gpus or '-'} "
                  f"{'' if d is None else f'{d:.0f}s'} {time.strftime('%m-%d %H:%M', time.localtime(j.created))}")
    elif cmd == "submit":
        gpus = [int(g) for g in argv[argv.index("--gpus") + 1].split(",")] if "--gpus" in argv else []
        print(store.submit(argv[1], Path(argv[2]).read_text(), gpus=gpus))
    elif cmd == "cancel":
        store.cancel(int(argv[1]))
    elif cmd == "rerun":
        print(store.rerun(int(argv[1])))
    elif cmd == "tail":
        print(log_tail(store.get(int(argv[1])).log_path, 40))


def main(argv: list[str]) -> int:
    from pipeline.errors import run_command

    if argv and argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return run_command(act, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
