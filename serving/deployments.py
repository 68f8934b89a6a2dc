"""Deployment state: the one file per deployment that says what was started, by whom, and what it serves.

    <home>/serve/<name>/state.json      phase, owner, replicas (+ process records), router, sampler, models, events
    <home>/serve/<name>/logs/           replica-N.log, router.log, stats.log

    from serving import deployments as D
    st = D.load("sqlgenie"); D.edit("sqlgenie", fn)        # read / read-modify-write under a short lock
    dep = D.read("sqlgenie")                                # the typed record clients and pages use (once a question)
    D.status("sqlgenie")                                    # health from process groups and /health, not flags
    D.reap()                                                # stop orphans of interrupted or unsupervised starts

Every process is recorded (pid, pgid, start time, command) the moment it exists (core/procs.py), so an
interrupted start, a killed supervisor or a dead leader never leaves a group nobody can find. The owner is
the process that started the deployment: `serve run` (supervised: it must stay alive) or `serve up`
(detached: it exits once the deployment is ready). A deployment whose owner died while it was starting, or
whose supervising owner died, is an orphan: `reap()` stops its groups (called by up, down, status, the
job store and the console start).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil
import requests

from core.files import FileLock, write_atomic
from core.procs import ProcRecord, alive, group_alive, start_ticks, stop_all
from core.settings import home
from serving.config import NAME_OK, DeploymentError

PHASES = ("starting", "ready", "stopping", "stopped")
MAX_EVENTS = 60


def root() -> Path:
    return home() / "serve"


def state_dir(name: str) -> Path:
    if not NAME_OK.fullmatch(name or ""):      # '..', 'a/b': a folder outside serve/ that nothing would find again
        raise DeploymentError(f"{name!r} is not a deployment name (letters, digits, '.', '_', '-')")
    return root() / name


def state_path(name: str) -> Path:
    return state_dir(name) / "state.json"


def _lock(name: str) -> FileLock:
    return FileLock(state_dir(name) / ".state.lock", f"deployment {name!r} state", wait_s=20)


def exists(name: str) -> bool:
    return state_path(name).is_file()


def load(name: str) -> dict:
    try:
        return json.loads(state_path(name).read_text())
    except FileNotFoundError:
        raise DeploymentError(f"no deployment named {name!r} (start one: sqlgenie serve up, or a serve job)") from None
    except (OSError, json.JSONDecodeError) as e:
        raise DeploymentError(f"deployment {name!r}: {state_path(name)} cannot be read ({e}); "
                              f"`sqlgenie serve down --name {name}` clears it") from None


def save(state: dict) -> None:
    write_atomic(state_path(state["name"]), json.dumps(state, indent=2))


def edit(name: str, fn: Callable[[dict], None]) -> dict:
    """Read, change and write the state under its lock (the supervisor and UI actions both write it)."""
    with _lock(name):
        st = load(name)
        fn(st)
        save(st)
        return st


def event(state: dict, what: str) -> None:
    state.setdefault("events", []).append({"t": time.time(), "what": what})
    del state["events"][:-MAX_EVENTS]


def names() -> list[str]:
    return sorted(p.parent.name for p in root().glob("*/state.json"))


# ------------------------------------------------------------------------------------ typed records
@dataclass(frozen=True)
class ServedModel:
    """One model a deployment serves, and what a client needs to prompt it as it was trained."""
    name: str
    kind: str                  # base | merged | lora
    tokenizer: str             # its tokenizer folder
    contract: dict             # sql.prompt.PromptContract fields, from its model card
    base: str | None = None    # a LoRA's base model (served name)

    def describe(self) -> str:
        """'ft-171217 (fine-tune, LoRA on try-171533)' / 'try-171533 (base)' / 'try-171533 (full fine-tune)'."""
        return f"{self.name} ({'fine-tune, LoRA on ' + str(self.base) if self.kind == 'lora' else self.kind})"


@dataclass(frozen=True)
class Deployment:
    """A deployment's state.json as one typed record, read once per question (read())."""
    name: str
    phase: str
    created: float
    router_url: str
    models: dict[str, ServedModel]
    on_cpu: bool               # a replica on a CPU (answers are not seeded there)
    has_workers: bool          # replicas on other hosts behind the router
    max_model_len: int | None

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise DeploymentError(f"deployment {self.name!r} serves {', '.join(self.models) or 'nothing'}, "
                                  f"not {name!r}")
        return self.models[name]


def read(name: str) -> Deployment:
    """The typed record of deployment `name` (DeploymentError if it does not exist or its state is unreadable)."""
    st = load(name)
    replicas = st.get("replicas") or []
    args = (replicas or [{}])[0].get("args", [])
    max_len = (int(args[args.index("--max-model-len") + 1]) if "--max-model-len" in args
               else (st.get("config") or {}).get("max_model_len"))
    models = {n: ServedModel(n, m.get("kind", "base"), m.get("tokenizer", ""), m.get("contract") or {}, m.get("base"))
              for n, m in (st.get("models") or {}).items()}
    return Deployment(st["name"], st.get("phase", ""), st.get("created", 0.0), (st.get("router") or {}).get("url", ""),
                      models, any(str(r.get("device", "")).startswith("cpu") for r in replicas),
                      bool(st.get("workers")), max_len)


# ------------------------------------------------------------------------------------ records
def records(state: dict) -> list[ProcRecord]:
    """Every process group the deployment started (replicas, router, its gate, sampler)."""
    router = state.get("router") or {}
    recs = [ProcRecord.from_dict(r.get("proc")) for r in state.get("replicas", [])]
    recs += [ProcRecord.from_dict(router.get("proc")), ProcRecord.from_dict((router.get("gate") or {}).get("proc")),
             ProcRecord.from_dict((state.get("sampler") or {}).get("proc"))]
    return [r for r in recs if r is not None]


def owner(state: dict) -> ProcRecord | None:
    return ProcRecord.from_dict(state.get("owner"))


def owner_alive(state: dict) -> bool:
    """The process that started the deployment still runs (its own pid and start time: the owner shares its
    process group with whatever started it, so the group says nothing about the owner)."""
    rec = owner(state)
    return rec is not None and alive(rec.pid) and start_ticks(rec.pid) == rec.start_ticks


def orphaned(state: dict) -> str:
    """Why this deployment's processes have nobody in charge ('' if they do, or none run)."""
    if not any(group_alive(r) for r in records(state)):
        return ""
    if state.get("phase") in ("starting", "stopping") and not owner_alive(state):
        return f"its start or stop was interrupted (owner pid {state.get('owner', {}).get('pid')} is gone)"
    if state.get("supervised") and not owner_alive(state):
        return f"its supervisor (pid {state.get('owner', {}).get('pid')}) is gone"
    return ""


def reap(only: str | None = None, progress: Callable[[str], None] = lambda s: None) -> list[str]:
    """Stop the process groups of orphaned deployments (see `orphaned`); returns what was cleaned."""
    cleaned = []
    for name in ([only] if only else names()):
        if not exists(name):
            continue
        try:
            st = load(name)
        except DeploymentError:
            continue
        why = orphaned(st)
        if not why:
            continue
        n = stop_all(records(st), grace_s=10)
        msg = f"deployment {name!r}: {why}; stopped {n} leftover process group(s)"
        progress(msg)
        cleaned.append(msg)

        def mark(s: dict) -> None:
            s["phase"] = "stopped"
            event(s, msg)

        try:
            edit(name, mark)
        except DeploymentError:
            pass
    return cleaned


# ------------------------------------------------------------------------------------ health
def healthy(url: str, timeout: float = 2.0, headers: dict | None = None) -> bool:
    try:
        return requests.get(url + "/health", timeout=timeout, headers=headers).status_code == 200
    except requests.RequestException:
        return False


def answering(url: str, timeout: float = 2.0) -> bool:
    """The server answers HTTP at all (the router's /health is 503 while any worker is unhealthy)."""
    try:
        requests.get(url + "/health", timeout=timeout)
        return True
    except requests.RequestException:
        return False


def status(name: str) -> dict:
    """The state with live facts: per replica alive (its process group) and healthy (/health); the router's
    health as healthy / degraded (k of n workers) / down, from what it can actually serve."""
    st = load(name)
    ok = 0
    total = 0
    for r in st.get("replicas", []):
        rec = ProcRecord.from_dict(r.get("proc"))
        r["alive"] = group_alive(rec)
        r["healthy"] = r["alive"] and healthy(r["url"], 1.5)
        r["health"] = ("healthy" if r["healthy"] else "starting" if r["alive"] and r.get("state") != "ready"
                       else "not answering" if r["alive"] else ("gave up" if r.get("state") == "gave_up" else "dead"))
        total += 1
        ok += r["healthy"]
    for w in st.get("workers", []):
        total += 1
        ok += healthy(w, 1.5)
    router = st.get("router") or {}
    rec = ProcRecord.from_dict(router.get("proc"))
    router["alive"] = group_alive(rec)
    up = router["alive"] and answering(router.get("url", ""), 1.5)
    router["health"] = ("down" if not up or ok == 0 else "healthy" if ok == total else f"degraded ({ok} of {total} workers)")
    router["healthy_workers"], router["workers_total"] = ok, total
    st["router"] = router
    st["owner_alive"] = owner_alive(st)
    st["orphaned"] = orphaned(st)
    return st


def port_holder(port: int) -> str:
    """Who listens on a local port: one of our recorded processes (named), another process, or ''."""
    for name in names():
        try:
            st = load(name)
        except DeploymentError:
            continue
        for r in st.get("replicas", []):
            if r.get("port") == port and group_alive(ProcRecord.from_dict(r.get("proc"))):
                return f"replica {r['index']} of deployment {name!r} (pid {r['proc']['pid']})"
        router = st.get("router") or {}
        gate = router.get("gate") or {}
        if router.get("port") == port and gate and group_alive(ProcRecord.from_dict(gate.get("proc"))):
            return f"the router's gate of deployment {name!r} (pid {gate['proc']['pid']})"
        if (port in (router.get("port"), router.get("metrics_port"), router.get("internal_port"))
                and group_alive(ProcRecord.from_dict(router.get("proc")))):
            return f"the router of deployment {name!r} (pid {router['proc']['pid']})"
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN:
                return f"another program (pid {c.pid})" if c.pid else "another program"
    except (psutil.Error, OSError):
        pass
    return "another program"

