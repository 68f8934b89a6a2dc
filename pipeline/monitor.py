"""Live machine sampling for the dashboard: NVML per GPU and per process (mapped to jobs), CPU/RAM fallback.

    from pipeline.monitor import sample
    s = sample(job_pids={7: 12345})     # {"t", "gpus": [...], "processes": [...], "cpu": {...}}
    python -m pipeline.monitor [--seconds 10] [--interval 1]       # prints samples as JSON lines
    SQLGENIE_NVML_REPLAY=samples.jsonl                             # sample() replays recorded lines in a loop

Per GPU: name, memory used/total, utilization, power, temperature. Per GPU process: pid, memory and
the job it belongs to (a job's supervisor is the process, its session leader, or an ancestor). Without NVML (no driver, no GPU) only CPU and RAM (psutil) are
reported. One sample costs ~1 ms of CPU with NVML initialised once per process.
"""
from __future__ import annotations

import json
import os
import sys
import time

from core import envs
from core.errors import SqlgenieError
from pipeline.jobs import JobStore, Status

_NVML = None


def _nvml():
    global _NVML
    if _NVML is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _NVML = pynvml
        except Exception:  # noqa: BLE001 - no driver / library: CPU-only machine
            _NVML = False
    return _NVML or None


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def job_of(pid: int, job_pids: dict[int, int]) -> int | None:
    """The job whose supervisor is `pid`, leads its session, or is one of its ancestors (a serve job's
    vLLM replicas run in sessions of their own, but they are still its descendants)."""
    import psutil

    if not job_pids:
        return None
    by_pid = {jpid: job_id for job_id, jpid in job_pids.items()}
    sid = _session(pid)
    if pid in by_pid:
        return by_pid[pid]
    if sid in by_pid:
        return by_pid[sid]
    try:
        for parent in psutil.Process(pid).parents():
            if parent.pid in by_pid:
                return by_pid[parent.pid]
    except psutil.Error:
        pass
    return None


def gpu_sample(job_pids: dict[int, int] | None = None) -> tuple[list[dict], list[dict]]:
    nv = _nvml()
    if nv is None:
        return [], []
    gpus, procs = [], []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        mem = nv.nvmlDeviceGetMemoryInfo(h)
        try:
            util = nv.nvmlDeviceGetUtilizationRates(h).gpu
        except nv.NVMLError:
            util = None
        try:
            power = nv.nvmlDeviceGetPowerUsage(h) / 1000
        except nv.NVMLError:
            power = None
        try:
            temp = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
        except nv.NVMLError:
            temp = None
        name = nv.nvmlDeviceGetName(h)
        gpus.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                     "mem_used_gib": mem.used / 2**30, "mem_total_gib": mem.total / 2**30,
                     "util_pct": util, "power_w": power, "temp_c": temp})
        seen = set()
        for getter in (nv.nvmlDeviceGetComputeRunningProcesses, nv.nvmlDeviceGetGraphicsRunningProcesses):
            try:
                plist = getter(h)
            except nv.NVMLError:
                continue
            for p in plist:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                used = getattr(p, "usedGpuMemory", None)
                procs.append({"gpu": i, "pid": p.pid, "mem_gib": (used or 0) / 2**30,
                              "job": job_of(p.pid, job_pids or {})})
    return gpus, procs


def cpu_sample() -> dict:
    import psutil

    vm = psutil.virtual_memory()
    return {"cpu_pct": psutil.cpu_percent(interval=None), "cores": psutil.cpu_count(),
            "ram_used_gib": (vm.total - vm.available) / 2**30, "ram_total_gib": vm.total / 2**30}


_replay: dict = {}


def _replayed() -> dict | None:
    """The next recorded sample (SQLGENIE_NVML_REPLAY), stamped now; lines cycle."""
    path = envs.text("SQLGENIE_NVML_REPLAY")
    if not path:
        return None
    if _replay.get("path") != path:
        lines = [json.loads(x) for x in open(path).read().splitlines() if x.strip()]
        _replay.update(path=path, lines=[x for x in lines if x.get("gpus")], i=0)
    lines = _replay["lines"]
    if not lines:
        return None
    s = dict(lines[_replay["i"] % len(lines)])
    _replay["i"] += 1
    s["t"], s["replay"] = time.time(), path
    return s


def sample(job_pids: dict[int, int] | None = None) -> dict:
    replayed = _replayed()
    if replayed is not None:
        return replayed
    gpus, procs = gpu_sample(job_pids)
    return {"t": time.time(), "gpus": gpus, "processes": procs, "cpu": cpu_sample()}


def _job_pids() -> dict[int, int]:
    """Running jobs' supervisor pids, from the job store (for recording samples with their jobs)."""
    try:
        return {j.id: j.pid for j in JobStore().list(200) if j.status == Status.RUNNING and j.pid}
    except SqlgenieError:  # no usable store here: samples without jobs
        return {}


if __name__ == "__main__":
    secs = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 0
    every = float(sys.argv[sys.argv.index("--interval") + 1]) if "--interval" in sys.argv else 1.0
    end = time.time() + secs
    while True:
        print(json.dumps(sample(_job_pids())), flush=True)
        if time.time() >= end:
            break
        time.sleep(every)
