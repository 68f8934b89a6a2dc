"""Persistent job runner: a SQLite job store + detached subprocesses that outlive the dashboard.

    from pipeline.jobs import JobStore
    store = JobStore()                                   # <home>/jobs.db
    job_id = store.submit("train", config_yaml_text, name="smollm2-cpu", gpus=[0])
    store.schedule()      # starts queued jobs whose GPUs are free (the dashboard and finishing jobs call it)
    store.cancel(job_id); store.rerun(job_id); store.reconcile(); store.list()

    python -m pipeline.jobs list | cancel ID | rerun ID | tail ID

Kinds: prepare, train, evaluate, export (run `python -m pipeline <kind> --config <job>/config.yaml`) and
serve (`python -m serving run --config ...`, alive as long as the deployment). Each job runs under a
small supervisor (`python -m pipeline.jobs.supervise ID`) started in its own session with no shell: it
sets CUDA_VISIBLE_DEVICES, runs the stage with output to the job's log, records the exit code, then
starts whatever was queued behind it. Cancel sends SIGTERM to the job's process group, then SIGKILL
after a grace period. `reconcile()` turns a running job whose supervisor vanished (machine reboot,
kill -9) into failed, with the log tail as its error. A job that needs a GPU another running job holds
waits in the queue.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import REPO_ROOT, home
from pipeline.errors import SqlgenieError
from pipeline.procs import alive as pid_alive, log_tail, stop_groups  # noqa: F401 (re-exported)

KINDS = ("prepare", "train", "evaluate", "export", "serve")
ACTIVE = ("queued", "running", "cancelling")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]', status TEXT NOT NULL, pid INTEGER, gpus TEXT NOT NULL DEFAULT '[]',
    log_path TEXT, metrics_path TEXT, created REAL NOT NULL, started REAL, finished REAL,
    exit_code INTEGER, error TEXT);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


class JobError(SqlgenieError):
    """A job request is invalid, or the job is not in a state that allows the action."""


@dataclass
class Job:
    id: int
    kind: str
    name: str
    config: str
    args: list[str]
    status: str
    pid: int | None
    gpus: list[int]
    log_path: str
    metrics_path: str | None
    created: float
    started: float | None
    finished: float | None
    exit_code: int | None
    error: str | None

    @property
    def dir(self) -> Path:
        return Path(self.log_path).parent

    def duration(self, now: float | None = None) -> float | None:
        if not self.started:
            return None
        return (self.finished or now or time.time()) - self.started


class JobStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else home() / "jobs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        d = dict(row)
        d["args"] = json.loads(d["args"])
        d["gpus"] = json.loads(d["gpus"])
        return Job(**d)

    # ------------------------------------------------------------------------------------ queries
    def get(self, job_id: int) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"no job {job_id}")
        return self._job(row)

    def list(self, limit: int = 500) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def _update(self, job_id: int, **fields) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))

    # ------------------------------------------------------------------------------------ actions
    def submit(self, kind: str, config: str, name: str | None = None, gpus: list[int] | None = None,
               args: list[str] | None = None, start: bool = True) -> int:
        """Queue a job. `config` is the YAML text of the stage's config (validated here, before queueing)."""
        from pipeline import config as C

        if kind not in KINDS:
            raise JobError(f"job kind {kind!r} is not one of {', '.join(KINDS)}")
        metrics = None
        if kind == "serve":
            from serving.launch import ServeConfig

            name = name or C.build(ServeConfig, C.parse_yaml(config, "serve job"), "serve job").name
        else:
            cfg = C.loads(config, f"{kind} job")
            name = name or cfg.name
            if kind == "train":
                metrics = str(Path(cfg.train.output_dir or cfg.run_dir() / "train") / "metrics.jsonl")
        now = time.time()
        with self._db() as db:
            cur = db.execute("INSERT INTO jobs (kind, name, config, args, status, gpus, created) VALUES (?,?,?,?,?,?,?)",
                             (kind, name, config, json.dumps(args or []), "queued", json.dumps(gpus or []), now))
            job_id = cur.lastrowid
        jdir = self.path.parent / "jobs" / str(job_id)
        jdir.mkdir(parents=True, exist_ok=True)
        (jdir / "config.yaml").write_text(config)
        self._update(job_id, log_path=str(jdir / "log.txt"), metrics_path=metrics)
        if start:
            self.schedule()
        return job_id

    def rerun(self, job_id: int) -> int:
        j = self.get(job_id)
        return self.submit(j.kind, j.config, j.name, j.gpus, j.args)

    def busy_gpus(self) -> set[int]:
        return {g for j in self.list() if j.status in ("running", "cancelling") for g in j.gpus}

    def schedule(self) -> list[int]:
        """Start queued jobs (oldest first) whose GPUs no running job holds."""
        self.reconcile()
        started = []
        busy = self.busy_gpus()
        for j in sorted((j for j in self.list() if j.status == "queued"), key=lambda j: j.id):
            if busy & set(j.gpus):
                continue
            with self._db() as db:  # claim it: only one scheduler starts a job
                claimed = db.execute("UPDATE jobs SET status='running', started=? WHERE id=? AND status='queued'",
                                     (time.time(), j.id)).rowcount
            if not claimed:
                continue
            proc = subprocess.Popen([sys.executable, "-m", "pipeline.jobs.supervise", str(j.id), str(self.path)],
                                    cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            self._update(j.id, pid=proc.pid)
            busy |= set(j.gpus)
            started.append(j.id)
        return started

    def cancel(self, job_id: int, grace_s: float | None = None) -> None:
        j = self.get(job_id)
        if grace_s is None:  # a serve job stops its replicas and router first
            grace_s = 40.0 if j.kind == "serve" else 10.0
        if j.status == "queued":
            self._update(job_id, status="cancelled", finished=time.time(), error="cancelled before it started")
            return
        if j.status not in ("running", "cancelling"):
            raise JobError(f"job {job_id} is {j.status}: nothing to cancel")
        self._update(job_id, status="cancelling")
        stop_groups([j.pid], grace_s)
        self._update(job_id, status="cancelled", finished=time.time(), error="cancelled by the user")
        self.schedule()

    def reconcile(self) -> list[int]:
        """Running jobs whose supervisor is gone become failed (with the log tail)."""
        lost = []
        for j in self.list():
            if j.status in ("running", "cancelling") and j.pid and not pid_alive(j.pid):
                fresh = self.get(j.id)  # the supervisor may have just written its result
                if fresh.status in ("running", "cancelling"):
                    final = "cancelled" if fresh.status == "cancelling" else "failed"
                    self._update(j.id, status=final, finished=time.time(),
                                 error=(f"the job's process vanished (pid {j.pid}); last log lines:\n" + log_tail(j.log_path, 10)))
                    lost.append(j.id)
        return lost

    def command(self, j: Job) -> list[str]:
        cfg = str(j.dir / "config.yaml")
        if j.kind == "serve":
            return [sys.executable, "-m", "serving", "run", "--config", cfg, *j.args]
        return [sys.executable, "-m", "pipeline", j.kind, "--config", cfg, *j.args]
