"""Start, supervise and stop N vLLM replicas behind vllm-router: one OpenAI endpoint.

    sqlgenie serve up --model runs/x/export/merged --replicas 2      # detached: returns once ready
    sqlgenie serve run --config serve.yaml                           # supervised, in the foreground (serve jobs)
    sqlgenie serve replica --model M --host 10.0.0.2 --port 8100     # one replica for a router on another host
    sqlgenie serve status | down [--name sqlgenie]

Each replica and the router run in their own process group, recorded in the deployment state the moment
they exist (serving/deployments.py), so a stop reaches every process of the group even after its leader
died (vLLM's EngineCore outlives a killed API server otherwise). Readiness is /health + /v1/models + a few
warm-up requests; a replica that dies while starting raises DeploymentError with its log tail and the likely
cause. A start that is interrupted (Ctrl-C, SIGTERM) stops what it started; one that is killed is cleaned by
the reaper on the next up/down/status. `serve run` watches every replica and the router, restarts a dead one
with backoff (2, 4, 8 ... 60 s) and gives up after `max_restarts`, each as an event in the state (shown on
the Serving page and by `status`); it also restarts a replica that lives but answers no health check for
`hang_timeout_s`. vllm-router is started in front with retries, a per-request timeout (a hung replica's
requests go to another), a circuit breaker, health checks and a Prometheus port; remote replicas join as
extra worker URLs. With SQLGENIE_TOKEN set the router listens on 127.0.0.1 only and serving/gate.py, which
asks every client for the token, takes the deployment's address; no secret is put on a command line.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Callable

import requests

from core import access, envs
from core.procs import ProcRecord, alive, group_alive, log_tail, spawn, start_ticks, stop, stop_all
from serving import deployments as D
from serving.config import DeploymentError, ServeConfig
from serving.plan import SERVE_VENV, Replica, free_ports, plan, port_free, served_models, vllm_python
from serving.stats import router_snapshot

RESTART_BACKOFF_S = (2, 4, 8, 16, 32, 60)


def vllm_available() -> bool:
    """Whether some interpreter here can run vLLM (SQLGENIE_VLLM_PYTHON, the serving venv, or this one)."""
    return bool(envs.text("SQLGENIE_VLLM_PYTHON")) or (SERVE_VENV / "python").exists() or _has_vllm()


def check_engine() -> None:
    """vLLM must be importable by the serving interpreter: say how to get it, instead of N dead replicas."""
    py = vllm_python()
    if py == sys.executable and not _has_vllm():
        raise DeploymentError("vLLM is not installed here: run `make setup-serve` (creates .venv-serve with vLLM for "
                              "CPU and vllm-router), or set SQLGENIE_VLLM_PYTHON to an interpreter that has vLLM")


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def diagnose(log: str) -> str:
    low = log.lower()
    if "out of memory" in low or "cuda error: out of memory" in low or "not enough memory" in low:
        return "out of memory: lower max_model_len or gpu_memory_utilization, or serve a quantized export"
    if "address already in use" in low:
        return "the port is taken: stop what uses it or change base_port/router_port"
    if "no module named 'vllm'" in low or "no module named vllm" in low:
        return "vLLM is not installed for the serving interpreter: run `make setup-serve`"
    if "no such file" in low or "does not appear to have" in low or "repository not found" in low or "not a valid model" in low:
        return "bad model path: point model at a folder with config.json + safetensors"
    if "max_model_len" in low and ("greater" in low or "larger" in low):
        return "max_model_len is larger than the model or the KV cache allows: lower it"
    return "see the log"


def wait_ready(rec: ProcRecord, url: str, log_path: str, what: str, timeout_s: float, models: bool = True) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not alive(rec.pid):
            tail = log_tail(log_path)
            raise DeploymentError(f"{what} exited while starting: {diagnose(tail)}\n--- {log_path} (last lines) ---\n{tail}")
        if D.healthy(url, headers=access.auth_header()):
            if not models:
                return
            try:
                if requests.get(url + "/v1/models", timeout=5, headers=access.auth_header()).ok:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.5)
    raise DeploymentError(f"{what} not healthy after {timeout_s:.0f} s: {diagnose(log_tail(log_path))}\n"
                          f"--- {log_path} ---\n{log_tail(log_path)}")


def warm_up(url: str, model: str, n: int) -> None:
    for i in range(n):
        requests.post(url + "/v1/completions", json={"model": model, "prompt": f"SELECT {i}", "max_tokens": 4,
                                                     "temperature": 0}, timeout=300,
                      headers=access.auth_header()).raise_for_status()


def _with_token(env: dict) -> dict:
    """A replica's environment: with a token, vLLM asks every /v1 request for it (VLLM_API_KEY, from the
    environment, never the command line); the router passes each client's Authorization header on, so the
    token that opened the gate opens the replica too, and nobody on this machine goes around the gate."""
    return {**env, "VLLM_API_KEY": access.token()} if access.token() else env


def request_timeout(cfg: ServeConfig, devices: list[str]) -> int:
    """The router's per-request timeout: the config's, else 120 s on GPUs and 600 s when a replica is a CPU (a
    loaded 2-core CPU took over 60 s for a first answer with a LoRA adapter)."""
    if cfg.request_timeout_s:
        return cfg.request_timeout_s
    return 600 if any(str(d).startswith("cpu") for d in devices) else 120


def router_command(cfg: ServeConfig, urls: list[str], host: str, port: int, metrics_port: int,
                   timeout_s: int = 120) -> list[str]:
    """vllm-router's command line (no secret on it: the router passes each client's Authorization header on to
    the workers, and a gate in front checks it)."""
    py = envs.text("SQLGENIE_ROUTER_PYTHON") or vllm_python()
    cmd = [py, "-m", "vllm_router.launch_router", "--host", host, "--port", str(port),
           "--worker-urls", *urls, "--policy", cfg.policy,
           "--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics_port),
           # A replica that dies mid-load: its circuit opens after 2 failed sends (open circuits are skipped
           # when picking a worker), so with 5 retries no request can spend all its attempts on it; health
           # checks every 2 s then take it out until it answers again.
           "--retry-max-retries", "5", "--retry-initial-backoff-ms", "50",
           "--health-check-interval-secs", "2", "--health-failure-threshold", "2",
           "--health-success-threshold", "1", "--health-check-endpoint", "/health",
           "--cb-failure-threshold", "2", "--cb-timeout-duration-secs", "5",
           # A replica that hangs (alive, silent) holds a request until this timeout, then it is retried elsewhere.
           "--request-timeout-secs", str(timeout_s),
           "--worker-startup-timeout-secs", "30", "--log-level", "warning"]
    return cmd


# ------------------------------------------------------------------------------------ starting pieces
def _record_into(name: str, setter: Callable[[dict, dict], None]) -> Callable[[ProcRecord], None]:
    """on_start callback: write the new process's record into the state before anything waits on it."""
    def save(rec: ProcRecord) -> None:
        D.edit(name, lambda st: setter(st, rec.to_dict()))
    return save


def start_replica(name: str, r: dict, cfg: ServeConfig) -> None:
    """Spawn replica r (a state entry), record it, wait until it answers, warm it up. Stops it on failure."""
    def setter(st: dict, rec: dict) -> None:
        st["replicas"][r["index"]].update(proc=rec, state="starting")

    _, rec = spawn([vllm_python(), "-m", "vllm.entrypoints.openai.api_server", *r["args"]], _with_token(r["env"]), r["log"],
                   r["cpus"], role=f"replica {r['index']}", on_start=_record_into(name, setter))
    try:
        wait_ready(rec, r["url"], r["log"], f"replica {r['index']} ({r['device']})", cfg.start_timeout_s)
        warm_up(r["url"], cfg.name, cfg.warmup_requests)
    except BaseException:
        stop(rec, 5)
        raise
    D.edit(name, lambda st: st["replicas"][r["index"]].update(state="ready"))


def start_router(name: str, cfg: ServeConfig, router: dict, urls: list[str]) -> None:
    def setter(st: dict, rec: dict) -> None:
        st["router"]["proc"] = rec

    gated = bool(router.get("gate"))
    host, port = ("127.0.0.1", router["internal_port"]) if gated else (cfg.host, router["port"])
    _, rec = spawn(router_command(cfg, urls, host, port, router["metrics_port"], router.get("request_timeout_s", 120)),
                   {}, router["log"],
                   role="router", on_start=_record_into(name, setter))
    try:
        wait_ready(rec, f"http://127.0.0.1:{port}", router["log"], "vllm-router", 60)
    except BaseException:
        stop(rec, 5)
        raise


def start_gate(name: str, cfg: ServeConfig, router: dict) -> None:
    """The token-asking front on the deployment's address (serving/gate.py), in front of the local router."""
    def setter(st: dict, rec: dict) -> None:
        st["router"]["gate"]["proc"] = rec

    gate = router["gate"]
    listen = f"[{cfg.host}]:{router['port']}" if ":" in cfg.host else f"{cfg.host}:{router['port']}"
    _, rec = spawn([sys.executable, "-m", "serving.gate", "--listen", listen,
                    "--upstream", f"http://127.0.0.1:{router['internal_port']}"], {}, gate["log"],
                   role="gate", on_start=_record_into(name, setter))
    try:
        wait_ready(rec, router["url"], gate["log"], "the router's gate", 30)
    except BaseException:
        stop(rec, 5)
        raise


def start_sampler(name: str) -> None:
    def setter(st: dict, rec: dict) -> None:
        st.setdefault("sampler", {})["proc"] = rec

    spawn([sys.executable, "-m", "serving.stats", "--name", name], {}, D.state_dir(name) / "logs" / "stats.log",
          role="stats sampler", on_start=_record_into(name, setter))


# ------------------------------------------------------------------------------------ up / down
class _Interrupted(KeyboardInterrupt):
    """SIGTERM while starting: unwind like Ctrl-C so what was started is stopped (the CLI then says so in one
    line and exits 143)."""
    exit_code = 143


def _raise_interrupted(*_) -> None:
    raise _Interrupted("SIGTERM while the deployment was starting; what was started is stopped")


def _check_free(cfg: ServeConfig, ports: list[tuple[int, str]]) -> None:
    first: dict[int, str] = {}
    for port, what in ports:
        if port in first:
            raise DeploymentError(f"{first[port]} and {what} are both {port}: give each its own (base_port / "
                                  "router_port / metrics_port; replica i takes base_port + i; 0 picks free ones)")
        first[port] = what
    taken = [f"{what} {port} is held by {D.port_holder(port)}" for port, what in ports if not port_free(port)]
    if taken:
        raise DeploymentError("; ".join(taken) + ": stop it, or choose other ports (base_port / router_port / "
                              "metrics_port, 0 picks free ones)")


def _check_workers(cfg: ServeConfig) -> None:
    """Remote replicas must answer and serve this deployment's model name (else the router's requests 404)."""
    bad = []
    for w in cfg.workers:
        try:
            names = [m["id"] for m in requests.get(w + "/v1/models", timeout=5, headers=access.auth_header()).json()
                     .get("data", [])]
        except (requests.RequestException, ValueError) as e:
            bad.append(f"worker {w} does not answer /v1/models ({type(e).__name__}): start it with `sqlgenie serve "
                       f"replica --name {cfg.name} --host ... --port ...` there")
            continue
        if cfg.name not in names:
            bad.append(f"worker {w} serves {', '.join(names) or 'nothing'}, not {cfg.name!r}: start it with --name {cfg.name}")
    if bad:
        raise DeploymentError("; ".join(bad))


def up(cfg: ServeConfig, progress: Callable[[str], None] = print, supervised: bool = False) -> dict:
    """Start every replica (in parallel), then the router and the stats sampler; returns the state."""
    if access.refusal(cfg.host):
        raise DeploymentError(f"host {cfg.host}: binding beyond localhost needs SQLGENIE_TOKEN (clients send it as a "
                              "bearer token)")
    check_engine()
    D.reap(cfg.name, progress)
    if D.exists(cfg.name):
        st = D.load(cfg.name)
        if any(group_alive(r) for r in D.records(st)):
            raise DeploymentError(f"deployment {cfg.name!r} is already running (pid {st.get('owner', {}).get('pid')}): stop "
                                  f"it on the dashboard's Serving page or with `sqlgenie serve down --name {cfg.name}`, "
                                  "or give the new one another name")
    _check_workers(cfg)
    replicas = plan(cfg)
    gated = bool(access.token())
    spare = iter(free_ports(3, avoid={r.port for r in replicas}))
    router_port = cfg.router_port or next(spare)
    metrics_port = cfg.metrics_port or next(spare)
    internal_port = next(spare) if gated else None          # the router's own, behind the gate
    _check_free(cfg, [(router_port, "router_port"), (metrics_port, "metrics_port")]
                + ([(internal_port, "the router's port behind its gate")] if gated else [])
                + [(r.port, f"replica {r.index} port") for r in replicas])
    for r in replicas:
        progress(f"replica {r.index} on {r.device}, port {r.port}: " + "; ".join(r.reasons))
    logs = D.state_dir(cfg.name) / "logs"
    me = ProcRecord(os.getpid(), os.getpgid(0), start_ticks(os.getpid()), sys.argv, "owner", time.time())
    host_url = ("127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else f"[{cfg.host}]" if ":" in cfg.host else cfg.host)
    state = {"name": cfg.name, "config": asdict(cfg), "created": time.time(), "phase": "starting",
             "supervised": supervised, "owner": me.to_dict(),
             "replicas": [{**{k: v for k, v in asdict(r).items()}, "url": r.url, "log": str(logs / f"replica-{r.index}.log"),
                           "proc": None, "state": "planned", "restarts": 0} for r in replicas],
             "workers": list(cfg.workers),
             "router": {"url": f"http://{host_url}:{router_port}", "port": router_port, "metrics_port": metrics_port,
                        "metrics": f"http://127.0.0.1:{metrics_port}/metrics", "log": str(logs / "router.log"), "proc": None,
                        "internal_port": internal_port,
                        "request_timeout_s": request_timeout(cfg, [r.device for r in replicas]),
                        "gate": {"log": str(logs / "gate.log"), "proc": None} if gated else None},
             "sampler": {}, "models": served_models(cfg), "events": []}
    D.event(state, f"starting {len(replicas)} replica(s) of {cfg.model}")
    D.state_dir(cfg.name).mkdir(parents=True, exist_ok=True)
    with D._lock(cfg.name):
        D.save(state)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)
    t0 = time.time()
    pool = ThreadPoolExecutor(max(1, len(replicas)))
    try:
        errors = []
        for f in [pool.submit(start_replica, cfg.name, r, cfg) for r in state["replicas"]]:
            try:
                f.result()
            except DeploymentError as e:
                errors.append(str(e))
        if errors:
            raise DeploymentError("\n".join(errors))
        progress(f"{len(replicas)} replica(s) ready in {time.time() - t0:.0f} s")
        urls = [r["url"] for r in state["replicas"]] + list(cfg.workers)
        start_router(cfg.name, cfg, state["router"], urls)
        if gated:
            start_gate(cfg.name, cfg, state["router"])
        start_sampler(cfg.name)
    except BaseException:
        progress("start failed or interrupted: stopping what was started")
        pool.shutdown(wait=False, cancel_futures=True)   # its waits end as soon as their processes are gone
        stop_all(D.records(D.load(cfg.name)), grace_s=5)
        D.edit(cfg.name, lambda s: (s.update(phase="stopped"), D.event(s, "start failed or was interrupted")))
        raise
    finally:
        pool.shutdown(wait=False)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    st = D.edit(cfg.name, lambda s: (s.update(phase="ready", ready_s=round(time.time() - t0, 1)),
                                     D.event(s, f"ready in {time.time() - t0:.0f} s")))
    progress(f"router {st['router']['url']} ({cfg.policy}) over {len(urls)} replica(s); metrics {st['router']['metrics']}")
    return st


def down(name: str = "sqlgenie", progress: Callable[[str], None] = lambda s: None) -> int:
    """Stop every process group of the deployment (leaders dead or alive), verify they are gone."""
    st = D.load(name)
    D.edit(name, lambda s: s.update(phase="stopping"))
    n = stop_all(D.records(st), grace_s=15.0)
    left = [r for r in D.records(st) if group_alive(r)]
    D.edit(name, lambda s: (s.update(phase="stopped"), D.event(s, f"stopped ({n} process group(s))")))
    if left:
        raise DeploymentError(f"deployment {name!r}: {len(left)} process group(s) survived SIGKILL: "
                              + ", ".join(f"{r.role} pgid {r.pgid}" for r in left))
    progress(f"stopped {n} process group(s)")
    return n


def ask_restart(name: str, index: int) -> dict:
    """A user's restart of replica `index` (the Serving page's button): the deployment's supervisor, the serve
    job that owns its processes, restarts it on its next check (about a second); the asking process (the
    dashboard) never owns a replica. A deployment nobody supervises (`sqlgenie serve up`) is refused with what to
    do instead."""
    st = D.load(name)
    if not 0 <= index < len(st["replicas"]):
        raise DeploymentError(f"deployment {name} has no replica {index} (it has {len(st['replicas'])})")
    if not st.get("supervised") or not D.owner_alive(st):
        raise DeploymentError(f"deployment {name} has no running supervisor to restart replica {index} (started by "
                              f"`sqlgenie serve up`, or its serve job ended): stop it and start it as a serve job "
                              f"(the Serving page's Start again, or `sqlgenie serve run`)")
    return D.edit(name, lambda s: (s["replicas"][index].update(restart_asked=time.time()),
                                   D.event(s, f"replica {index}: restart asked for by the user")))


def restart_replica(name: str, index: int) -> dict:
    """Start replica `index` again with its saved arguments, in this process (which then owns it): the
    supervisor's way and tests'; users ask through ask_restart."""
    st = D.load(name)
    cfg = ServeConfig(**st["config"])
    r = st["replicas"][index]
    D.edit(name, lambda s: s["replicas"][index].update(state="restarting"))
    stop(ProcRecord.from_dict(r.get("proc")), 10)
    start_replica(name, r, cfg)
    return D.edit(name, lambda s: D.event(s, f"replica {index} restarted by the user"))


# ------------------------------------------------------------------------------------ supervision
class Supervisor:
    """Watches a ready deployment: a replica whose process group died (or whose API server died, leaving its
    engine behind), or that lives but has answered no health check for `hang_timeout_s`, is stopped whole and
    started again after a backoff; after max_restarts it is given up. A dead router or gate is started again
    at once."""

    def __init__(self, name: str, cfg: ServeConfig, progress: Callable[[str], None] = print):
        self.name, self.cfg, self.progress = name, cfg, progress
        self.busy: set[int] = set()
        self.next_try: dict[int, float] = {}
        self.silent_since: dict[int, float] = {}       # replica -> when its health checks stopped answering
        self.last_probe = 0.0

    def _silent(self, st: dict) -> dict[int, float]:
        """Replicas (ready, process alive) that have answered no health check for hang_timeout_s: {index: s}."""
        limit = self.cfg.hang_timeout_s
        now = time.time()
        if not limit or now - self.last_probe < min(5.0, limit / 3):
            return {}
        self.last_probe = now
        ready = [r for r in st["replicas"] if r.get("state") == "ready" and r["index"] not in self.busy]
        with ThreadPoolExecutor(max(1, len(ready))) as pool:
            answers = dict(zip([r["index"] for r in ready],
                               pool.map(lambda r: D.healthy(r["url"], timeout=min(5.0, limit / 3)), ready)))
        for i, ok in answers.items():
            if ok:
                self.silent_since.pop(i, None)
            else:
                self.silent_since.setdefault(i, now)
        return {i: now - t for i, t in self.silent_since.items() if now - t >= limit and i in answers}

    def _note(self, what: str) -> None:
        self.progress(what)
        D.edit(self.name, lambda s: D.event(s, what))

    def _restart(self, r: dict, asked: bool = False) -> None:
        i = r["index"]
        try:
            start_replica(self.name, r, self.cfg)
            self._note(f"replica {i} is back" + (" (restarted as asked)" if asked else f" (restart {r['restarts']})"))
        except DeploymentError as e:
            self._note(f"replica {i} restart {r['restarts']} failed: {str(e).splitlines()[0]}")
            D.edit(self.name, lambda s: s["replicas"][i].update(state="dead"))
        finally:
            self.busy.discard(i)

    def _restart_asked(self, r: dict) -> None:
        """A user asked (ask_restart): stop the replica whole and start it again; not counted against
        max_restarts."""
        i = r["index"]
        self.busy.add(i)
        self.silent_since.pop(i, None)
        self.next_try.pop(i, None)
        D.edit(self.name, lambda s: (s["replicas"][i].pop("restart_asked", None),
                                     s["replicas"][i].update(state="restarting")))
        self._note(f"replica {i}: restarting as asked")

        def go():
            stop(ProcRecord.from_dict(r.get("proc")), 10)
            self._restart(r, asked=True)

        threading.Thread(target=go, daemon=True).start()

    def check(self) -> None:
        st = D.load(self.name)
        if st.get("phase") != "ready":
            return
        for r in st["replicas"]:
            if r.get("restart_asked") and r["index"] not in self.busy:
                self._restart_asked(r)
        silent = self._silent(st)
        for r in st["replicas"]:
            i = r["index"]
            if i in self.busy or r.get("state") in ("stopped", "gave_up", "restarting", "starting", "planned"):
                continue
            rec = ProcRecord.from_dict(r.get("proc"))
            if i not in silent and rec is not None and alive(rec.pid) and group_alive(rec):
                continue
            if r.get("state") == "ready":
                stop(rec, 5)   # the leader died (its engine may still hold memory and the port), or it hangs
                self.silent_since.pop(i, None)
                last = (log_tail(r["log"], 3).splitlines() or [""])[-1]
                why = (f"answered no health check for {silent[i]:.0f} s though its process lives (hung): stopped it"
                       if i in silent else "died (its API server process is gone)")
                self._note(f"replica {i} {why}; last log line: {last[:200]}")
                D.edit(self.name, lambda s: s["replicas"][i].update(state="dead"))
                r["state"] = "dead"
            if r["restarts"] >= self.cfg.max_restarts:
                D.edit(self.name, lambda s: s["replicas"][i].update(state="gave_up"))
                self._note(f"replica {i}: gave up after {r['restarts']} restarts (see {r['log']})")
                continue
            wait = RESTART_BACKOFF_S[min(r["restarts"], len(RESTART_BACKOFF_S) - 1)]
            due = self.next_try.setdefault(i, time.time() + wait)
            if time.time() < due:
                continue
            self.next_try.pop(i, None)
            r["restarts"] += 1
            D.edit(self.name, lambda s: s["replicas"][i].update(restarts=r["restarts"], state="restarting"))
            self._note(f"replica {i}: restarting (attempt {r['restarts']} of {self.cfg.max_restarts})")
            self.busy.add(i)
            threading.Thread(target=self._restart, args=(r,), daemon=True).start()
        router = st.get("router") or {}
        rec = ProcRecord.from_dict(router.get("proc"))
        if not (rec and alive(rec.pid)):
            stop(rec, 5)
            self._note("the router died: starting it again")
            try:
                start_router(self.name, self.cfg, router, [r["url"] for r in st["replicas"]] + list(st.get("workers", [])))
            except DeploymentError as e:
                self._note(f"router restart failed: {str(e).splitlines()[0]}")
        gate = router.get("gate")
        rec = ProcRecord.from_dict((gate or {}).get("proc"))
        if gate and not (rec and alive(rec.pid)):
            stop(rec, 5)
            self._note("the router's gate died: starting it again")
            try:
                start_gate(self.name, self.cfg, router)
            except DeploymentError as e:
                self._note(f"gate restart failed: {str(e).splitlines()[0]}")


class IdleWatch:
    """When a supervised deployment has had no request for `limit_s` (the router's request counter did not move;
    a router that does not answer is not idleness). `seen(count, now)` is fed every few seconds."""

    def __init__(self, limit_s: float, now: float):
        self.limit_s, self.last_change, self.count = limit_s, now, None

    def seen(self, count: float | None, now: float) -> bool:
        """True once the deployment has been idle for the limit."""
        if count is None or count != self.count:
            self.count, self.last_change = count, now
            return False
        return bool(self.limit_s) and now - self.last_change >= self.limit_s


def run(cfg: ServeConfig, progress: Callable[[str], None] = print, interval_s: float = 1.0) -> None:
    """up, then supervise in the foreground until SIGTERM/SIGINT (or, with idle_stop_s, until no request came for
    that long), then down (what a serve job runs)."""
    stopping: list[int] = []

    def on_signal(*_):
        stopping.append(1)

    st = up(cfg, progress, supervised=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    progress(f"ready: {st['router']['url']}/v1  (models {', '.join(st['models'])})")
    sup = Supervisor(cfg.name, cfg, progress)
    idle = IdleWatch(cfg.idle_stop_s, time.time())
    try:
        while not stopping:
            time.sleep(interval_s)
            sup.check()
            if cfg.idle_stop_s:
                counted = router_snapshot(st["router"]["metrics"])
                if idle.seen(counted.get("requests") if counted.get("up") else None, time.time()):
                    sup._note(f"no request for {cfg.idle_stop_s} s: stopping by itself (idle_stop_s; start it again "
                              "from the Serving page)")
                    break
    finally:
        down(cfg.name, progress)
        progress("stopped")


def remote_replica(cfg: ServeConfig, host: str, port: int, progress: Callable[[str], None] = print) -> None:
    """One replica for a router elsewhere (its URL goes into that deployment's `workers`): binds host:port,
    stays in the foreground, restarts itself if it dies, stops on SIGTERM/SIGINT."""
    if not access.is_local(host) and not access.token():
        progress(f"note: replica on {host}:{port} has no token; keep it on a private network")
    check_engine()
    r: Replica = plan(ServeConfig(**{**asdict(cfg), "replicas": 1}))[0]
    env = _with_token(r.env)
    args = list(r.args)
    args[args.index("--host") + 1] = host
    args[args.index("--port") + 1] = str(port)
    log = D.state_dir(cfg.name) / "logs" / f"remote-replica-{port}.log"
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    restarts = 0
    while not stopping:
        _, rec = spawn([vllm_python(), "-m", "vllm.entrypoints.openai.api_server", *args], env, log, r.cpus,
                       role="remote replica")
        try:
            wait_ready(rec, f"http://{host}:{port}", str(log), f"replica on {host}:{port}", cfg.start_timeout_s)
            progress(f"replica ready: http://{host}:{port} (add it to a deployment's workers)")
            while not stopping and alive(rec.pid):
                time.sleep(1)
        except DeploymentError as e:
            progress(str(e).splitlines()[0])
        finally:
            stop(rec, 10)
        if stopping or restarts >= cfg.max_restarts:
            break
        restarts += 1
        time.sleep(RESTART_BACKOFF_S[min(restarts - 1, len(RESTART_BACKOFF_S) - 1)])
        progress(f"replica died: restart {restarts} of {cfg.max_restarts}")
