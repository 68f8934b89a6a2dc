"""Persistent job runner: a SQLite job store + detached supervisors whose jobs outlive the dashboard.

    from pipeline.jobs import JobStore
    store = JobStore()                                   # <home>/jobs.db
    job_id = store.submit("train", config_yaml_text, gpus=[0])
    store.schedule()      # reconciles, then starts queued jobs whose GPUs / CPU cores are free
    store.cancel(job_id); store.rerun(job_id); store.list(); store.get(job_id)

Kinds: prepare, train, evaluate, export (`python -m pipeline <kind> --config <job>/config.yaml`) and serve
(`python -m serving run --config ...`, alive as long as the deployment). Each job runs under a small
supervisor (pipeline/jobs/supervise.py) started in its own session with no shell: the supervisor, the
exit-code runner and the stage share one process group, recorded in the job row (pid, pgid, start time)
the moment it exists. Cancel stops that whole group, whether or not the supervisor still lives.

The job's state follows its real processes: a job whose supervisor died while its stage still runs is
adopted by a new watcher (never marked failed while it runs); one whose whole group is gone gets the exit
code its runner wrote, or "failed" with the log tail. Scheduling: a job that needs a GPU another running
job holds waits; CPU jobs wait for a cores budget (train/evaluate/export take every core of a CPU-only
machine, prepare one; serve jobs are services and are not counted). Every job's row is mirrored in its
folder (job.json), so a damaged jobs.db is rebuilt from the folders with nothing lost, and a deleted or
emptied one gets every job back from them. Job ids are never reused: a new job's id is above every id the
store or any job folder ever had, and an existing job folder is never written by another job.
A cancel wins: once a user cancelled a job, no watcher's late finish turns it into anything else.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from core.errors import SqlgenieError
from core.files import write_atomic
from core.procs import ProcRecord, alive, group_alive, log_tail, spawn, stop
from core.settings import home, parse_yaml
from pipeline import config as C
from pipeline import runs
from serving import deployments
from serving.config import load_serve_config

KINDS = ("prepare", "train", "evaluate", "export", "serve")


class Status(StrEnum):
    """A job's status: the jobs table's `status` column (this module's SQL spells the same words)."""
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"       # cancel asked; its processes are being stopped
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)
LIVE = (Status.RUNNING, Status.CANCELLING)          # its processes exist
FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
COLUMNS = ("id", "kind", "name", "config", "args", "status", "pid", "gpus", "log_path", "metrics_path", "created",
           "started", "finished", "exit_code", "error", "proc", "cores", "note")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]', status TEXT NOT NULL, pid INTEGER, gpus TEXT NOT NULL DEFAULT '[]',
    log_path TEXT, metrics_path TEXT, created REAL NOT NULL, started REAL, finished REAL,
    exit_code INTEGER, error TEXT, proc TEXT, cores INTEGER NOT NULL DEFAULT 1, note TEXT);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""
BUSY_TIMEOUT_S = 5.0
MAX_ID = 2**63 - 1          # SQLite's largest integer: a bigger id names no job
# the summary line each stage prints last when it succeeded (pipeline/cli.py): a success recognised in the log
# when the exit code itself was lost
SUMMARIES = {"prepare": r"^prepared \d+ train \+ \d+ eval rows in ", "evaluate": r": execution accuracy .* -> ",
             "export": r"^exports in .*:$", "train": r"^run \S+: trained \d+ steps in "}


class JobError(SqlgenieError):
    """A job request is invalid, the job is not in a state that allows the action, or the store cannot be used."""


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
    proc: dict | None = None       # the job's process group (ProcRecord of its supervisor)
    cores: int = 1
    note: str | None = None        # e.g. "adopted after its supervisor died"

    @property
    def dir(self) -> Path:
        return Path(self.log_path).parent

    @property
    def exit_file(self) -> Path:
        return self.dir / "exit_code"

    def duration(self, now: float | None = None) -> float | None:
        if not self.started:
            return None
        return (self.finished or now or time.time()) - self.started

    def record(self) -> ProcRecord | None:
        return ProcRecord.from_dict(self.proc)


def machine_gpus() -> list[int]:
    """GPU indices of this machine (NVML), [] on CPU machines."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return list(range(pynvml.nvmlDeviceGetCount()))
    except Exception:  # noqa: BLE001 - no driver / library: a CPU machine
        return []


def job_cores(kind: str, gpus: list[int], machine: list[int]) -> int:
    """CPU cores a job takes from the budget: heavy CPU stages take the machine, serve jobs none."""
    if kind == "serve":
        return 0
    if gpus or machine:
        return 1                        # GPU work: the GPU is the resource
    return 1 if kind == "prepare" else (os.cpu_count() or 1)


class JobStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else home() / "jobs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jobs_dir = self.path.parent / "jobs"
        self._machine_gpus: list[int] | None = None
        self._open()

    def _open(self) -> None:
        """Create or upgrade the table; a damaged file is rebuilt, and jobs the store lacks (a deleted or emptied
        jobs.db, a row lost) are restored from their folders."""
        try:
            with self._db() as db:
                db.executescript(SCHEMA)
                have = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
                for col, decl in (("proc", "TEXT"), ("cores", "INTEGER NOT NULL DEFAULT 1"), ("note", "TEXT")):
                    if col not in have:   # a store from an older version: add the columns, keep the rows
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {col} {decl}")
                known = {r[0] for r in db.execute("SELECT id FROM jobs")}
                lost = [n for n, _ in self._folders() if n not in known and n <= MAX_ID]
                restored = self._restore(db, lost) if lost else []
        except sqlite3.DatabaseError as e:
            if "locked" in str(e):
                raise self._locked(e) from None
            self._rebuild(e)
            return
        if restored:
            print(f"[jobs] {self.path} lacked job(s) {', '.join(map(str, restored))} (the file was deleted, emptied or "
                  f"replaced); restored them from {self.jobs_dir}", file=sys.stderr)

    # ------------------------------------------------------------------------------------ storage
    @contextmanager
    def _db(self):
        """A connection, committed (rolled back on an error) and closed at the end: no connection outlives its
        use, so no lock or WAL index of a replaced or deleted file lingers in a long-lived process."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.row_factory = sqlite3.Row
            with db:
                yield db
        finally:
            db.close()

    def _locked(self, e: Exception) -> JobError:
        return JobError(f"the job store {self.path} stayed locked for {BUSY_TIMEOUT_S:g} s ({e}): another process holds "
                        "a write transaction on it; try again, and if it persists stop stray `sqlite3` sessions on "
                        "that file")

    @contextmanager
    def _session(self):
        """A connection whose locked or damaged store is one JobError."""
        try:
            with self._db() as db:
                yield db
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise self._locked(e) from None
            raise
        except sqlite3.DatabaseError as e:
            raise JobError(f"the job store {self.path} is damaged ({e}); it is rebuilt from the job folders the next "
                           "time the store opens (restart the console, or run `sqlgenie jobs list`)") from None

    def _exec(self, sql: str, params: tuple = ()) -> tuple[list[sqlite3.Row], int, int]:
        """(rows, lastrowid, rowcount) of one statement. A store file deleted or emptied while this process has it
        open (no jobs table any more) is rebuilt from the job folders first."""
        for attempt in (1, 2):
            try:
                with self._session() as db:
                    cur = db.execute(sql, params)
                    return cur.fetchall(), cur.lastrowid, cur.rowcount
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e) or attempt == 2:
                    raise
                self._open()
        raise AssertionError("unreachable")

    def _rebuild(self, cause: Exception) -> None:
        """A damaged jobs.db: keep it aside, make a new one from every job folder's job.json."""
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        print(f"[jobs] {self.path} could not be read ({cause}); kept it as {aside} and rebuilt the store from "
              f"{self.jobs_dir}", file=sys.stderr)
        with self._db() as db:
            db.executescript(SCHEMA)
            self._restore(db, [n for n, _ in self._folders() if n <= MAX_ID])

    def _folders(self) -> list[tuple[int, Path]]:
        """(id, folder) of every job folder, by id."""
        try:
            found = [(int(p.name), p) for p in self.jobs_dir.iterdir() if p.name.isascii() and p.name.isdigit()]
        except OSError:
            return []
        return sorted(found)

    def _restore(self, db: sqlite3.Connection, ids: list[int]) -> list[int]:
        """Insert the rows of these jobs from their folders' job.json (unreadable ones are skipped); the ids done."""
        done = []
        for job_id in ids:
            try:
                d = json.loads((self.jobs_dir / str(job_id) / "job.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(d, dict) or d.get("id") != job_id:
                continue
            d = {k: d.get(k) for k in COLUMNS}
            d["args"], d["gpus"] = json.dumps(d["args"] or []), json.dumps(d["gpus"] or [])
            d["proc"] = json.dumps(d["proc"]) if d["proc"] else None
            d["cores"] = d["cores"] or 1
            try:
                db.execute(f"INSERT OR IGNORE INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                           tuple(d[k] for k in COLUMNS))
            except sqlite3.IntegrityError:   # a job.json without the required fields
                continue
            done.append(job_id)
        return done

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        d = dict(row)
        d["args"] = json.loads(d["args"])
        d["gpus"] = json.loads(d["gpus"])
        d["proc"] = json.loads(d["proc"]) if d.get("proc") else None
        return Job(**{k: d.get(k) for k in COLUMNS})

    def _mirror(self, job_id: int) -> None:
        j = self.get(job_id)
        write_atomic(j.dir / "job.json", json.dumps(asdict(j), indent=2))

    def update(self, job_id: int, **fields) -> None:
        if "proc" in fields and fields["proc"] is not None:
            fields["proc"] = json.dumps(fields["proc"])
        cols = ", ".join(f"{k}=?" for k in fields)
        self._exec(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))
        self._mirror(job_id)

    # ------------------------------------------------------------------------------------ queries
    def get(self, job_id: int) -> Job:
        if not 0 < int(job_id) <= MAX_ID:
            raise JobError(f"no job {job_id} (`sqlgenie jobs list` shows the jobs)")
        rows = self._exec("SELECT * FROM jobs WHERE id=?", (int(job_id),))[0]
        if not rows:
            raise JobError(f"no job {job_id} (`sqlgenie jobs list` shows the jobs)")
        return self._job(rows[0])

    def list(self, limit: int = 500) -> list[Job]:
        return [self._job(r) for r in self._exec("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))[0]]

    def machine_gpus(self) -> list[int]:
        if self._machine_gpus is None:
            self._machine_gpus = machine_gpus()
        return self._machine_gpus

    # ------------------------------------------------------------------------------------ actions
    def validate(self, kind: str, config: str) -> str:
        """The job's name; every problem of its config as one ConfigError before anything is queued."""
        if kind not in KINDS:
            raise JobError(f"job kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind == "serve":
            return load_serve_config(tree=parse_yaml(config, "serve job"), source="serve job").name
        return C.loads(config, f"{kind} job", need_model=kind != "prepare").name

    def submit(self, kind: str, config: str, name: str | None = None, gpus: list[int] | None = None,
               args: list[str] | None = None, start: bool = True) -> int:
        """Queue a job. `config` is the YAML text of the stage's config (validated here, before queueing)."""
        checked = self.validate(kind, config)       # always: a given name must not skip the config's check
        name = name or checked
        gpus = sorted(set(gpus or []))
        machine = self.machine_gpus()
        bad = [g for g in gpus if machine and g not in machine] if machine else gpus
        if bad:
            raise JobError(f"GPUs {bad} do not exist here ({'GPUs ' + str(machine) if machine else 'no GPUs'}); "
                           "leave the GPU field empty for " + ("all GPUs" if machine else "the CPU"))
        job_id, jdir = self._insert_new(
            "INSERT INTO jobs (id, kind, name, config, args, status, gpus, created, cores) VALUES (?,?,?,?,?,?,?,?,?)",
            (kind, name, config, json.dumps(args or []), Status.QUEUED, json.dumps(gpus), time.time(),
             job_cores(kind, gpus, machine)))
        (jdir / "config.yaml").write_text(config)
        self.update(job_id, log_path=str(jdir / "log.txt"))
        if start:
            self.schedule()
        return job_id

    def _insert_new(self, sql: str, values: tuple) -> tuple[int, Path]:
        """Insert a job row under a new id, one above every id the store (its sequence too) or a job folder ever
        had, and create its folder (never an existing one) in the same write transaction; (id, folder)."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        with self._session() as db:
            db.execute("BEGIN IMMEDIATE")     # one submitter at a time from here to the commit
            seen = [r[0] or 0 for r in db.execute("SELECT max(id) FROM jobs UNION ALL "
                                                  "SELECT seq FROM sqlite_sequence WHERE name='jobs'")]
            job_id = max([0, *seen, *(n for n, _ in self._folders())]) + 1
            while True:
                jdir = self.jobs_dir / str(job_id)
                try:
                    jdir.mkdir()
                    break
                except FileExistsError:       # made since the listing (not by a submitter: they hold the lock)
                    job_id += 1
            try:
                db.execute(sql, (job_id, *values))
            except BaseException:
                jdir.rmdir()
                raise
        return job_id, jdir

    def rerun(self, job_id: int) -> int:
        """The same request again, as a new job (a train rerun is a new run: nothing of the old one is touched)."""
        j = self.get(job_id)
        return self.submit(j.kind, j.config, j.name, j.gpus, j.args)

    def _holds_gpus(self, j: Job) -> set[int]:
        return set(j.gpus) if j.gpus else set(self.machine_gpus())

    def schedule(self) -> list[int]:
        """Reconcile, then start queued jobs (oldest first) whose GPUs / cores are free."""
        self.reconcile()
        jobs = self.list()
        running = [j for j in jobs if j.status in LIVE]
        busy = set().union(*(self._holds_gpus(j) for j in running if j.kind != "serve" or j.gpus)) if running else set()
        cores_used = sum(j.cores for j in running)
        budget = os.cpu_count() or 1
        started = []
        for j in sorted((j for j in jobs if j.status == Status.QUEUED), key=lambda j: j.id):
            want_gpus = self._holds_gpus(j) if (j.kind != "serve" or j.gpus) else set()
            if busy & want_gpus or (j.cores and cores_used + j.cores > budget and cores_used > 0):
                continue
            claimed = self._exec("UPDATE jobs SET status='running', started=? WHERE id=? AND status='queued'",
                                 (time.time(), j.id))[2]
            if not claimed:   # another scheduler claimed it first
                continue
            self._start(j)
            busy |= want_gpus
            cores_used += j.cores
            started.append(j.id)
        return started

    def _start(self, j: Job, adopt: bool = False) -> None:
        cmd = [sys.executable, "-m", "pipeline.jobs.supervise", str(j.id), str(self.path)] + (["--adopt"] if adopt else [])
        if adopt:   # its pid is on record before this returns: no other reconcile takes the job meanwhile
            write_atomic(j.dir / "watcher.pid", str(spawn(cmd, {}, None, role=f"job {j.id} watcher")[1].pid))
            return
        spawn(cmd, {}, None, role=f"job {j.id} supervisor", on_start=lambda r: self.update(j.id, pid=r.pid, proc=r.to_dict()))

    def cancel(self, job_id: int, grace_s: float | None = None) -> None:
        j = self.get(job_id)
        if grace_s is None:  # a serve job stops its replicas and router first
            grace_s = 40.0 if j.kind == "serve" else 10.0
        if j.status == Status.QUEUED:
            if self._exec("UPDATE jobs SET status='cancelled', finished=?, error='cancelled before it started' "
                          "WHERE id=? AND status='queued'", (time.time(), job_id))[2]:
                self._mirror(job_id)
                return
            j = self.get(job_id)                  # it started meanwhile
        if not self._exec("UPDATE jobs SET status='cancelling' WHERE id=? AND status IN ('running', 'cancelling')",
                          (job_id,))[2]:
            raise JobError(f"job {job_id} is {self.get(job_id).status}: nothing to cancel")
        self._mirror(job_id)
        stop(j.record(), grace_s)
        if j.kind == "serve":     # its replicas live in their own groups: the deployment is stopped too
            deployments.reap(self.serve_name(j))
        self.update(job_id, status=Status.CANCELLED, finished=time.time(), error="cancelled by the user")
        self.schedule()

    def serve_name(self, j: Job) -> str:
        try:
            return load_serve_config(tree=parse_yaml(j.config, "serve job")).name
        except SqlgenieError:
            return j.name

    def serving(self, limit: int = 500) -> dict[str, Job]:
        """Active (queued, running, cancelling) serve jobs by the deployment they run, newest first."""
        out: dict[str, Job] = {}
        for j in self.list(limit):
            if j.kind == "serve" and j.status in ACTIVE:
                out.setdefault(self.serve_name(j), j)
        return out

    def reconcile(self) -> list[int]:
        """Make every running job's status follow its processes (see the module docstring)."""
        changed = []
        for j in self.list():
            if j.status not in LIVE:
                continue
            rec = j.record()
            if rec is None:
                if j.started and time.time() - j.started > 30:   # claimed but never spawned (scheduler died)
                    self.update(j.id, status=Status.FAILED, finished=time.time(), error="its supervisor never started")
                    changed.append(j.id)
                continue
            if alive(rec.pid) or self._watcher_alive(j):
                continue                              # its supervisor (or watcher) is in charge
            fresh = self.get(j.id)                    # the supervisor may have just written its result
            if fresh.status not in LIVE:
                continue
            if group_alive(rec):                      # supervisor gone, stage still running: adopt it
                self.update(j.id, note=f"adopted at {time.strftime('%H:%M:%S')}: its supervisor (pid {rec.pid}) died "
                                       "while the stage ran on")
                self._start(j, adopt=True)
                changed.append(j.id)
                continue
            self.finish(j.id)
            changed.append(j.id)
        return changed

    def _watcher_alive(self, j: Job) -> bool:
        """This job's adopt watcher runs (its pid, from watcher.pid, runs that watcher: not a reused pid)."""
        try:
            pid = int((j.dir / "watcher.pid").read_text())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            return False
        return alive(pid) and "pipeline.jobs.supervise" in argv and str(j.id) in argv and "--adopt" in argv

    def finish(self, job_id: int, code: int | None = None, unknown: str | None = None) -> Job:
        """Record the outcome of a job whose processes have ended: `code`, else the one its runner wrote. Without
        either, `unknown` says why (default: the whole group vanished unseen); a success the stage recorded
        itself still reads `succeeded`. A job that is no longer running is left as it is (a cancel wins)."""
        j = self.get(job_id)
        if code is None:
            try:
                code = int(j.exit_file.read_text().strip())
            except (OSError, ValueError):
                pass
        note, error = j.note, None
        if code == 0:
            status = Status.SUCCEEDED
        elif code is None:
            why = unknown or (f"its processes vanished without an exit code (pid {j.pid}: killed, or the machine "
                              "restarted)")
            ok = self.recognised_success(j)
            if ok:
                status, note = Status.SUCCEEDED, "; ".join(filter(None, [note, f"{why}; {ok}"]))
            else:
                status, error = Status.FAILED, f"{why}; last log lines:\n{log_tail(j.log_path, 15)}"
        else:
            status, error = Status.FAILED, f"exit code {code}; last log lines:\n{log_tail(j.log_path, 15)}"
        if self._exec("UPDATE jobs SET status=CASE status WHEN 'cancelling' THEN 'cancelled' ELSE ? END, "
                      "error=CASE status WHEN 'cancelling' THEN 'cancelled by the user' ELSE ? END, "
                      "exit_code=?, finished=?, note=? WHERE id=? AND status IN ('running', 'cancelling')",
                      (status, error, code, time.time(), note, job_id))[2]:
            self._mirror(job_id)
        return self.get(job_id)

    def recognised_success(self, j: Job) -> str | None:
        """How the stage itself recorded success (its train run says so, or the log ends with the stage's
        summary), for a job whose exit code was lost; None when nothing says so."""
        if j.kind == "train":
            run = runs.for_job(j.id)
            if run is not None and run.status == "succeeded":
                return f"its run {run.id} recorded that it succeeded"
        pattern = SUMMARIES.get(j.kind)
        tail = log_tail(j.log_path, 15).splitlines()
        line = next((ln for ln in tail if pattern and re.search(pattern, ln)), None)
        return f"the stage printed its closing summary: {line.strip()!r}" if line else None

    def command(self, j: Job) -> list[str]:
        cfg = str(j.dir / "config.yaml")
        if j.kind == "serve":
            return [sys.executable, "-m", "serving", "run", "--config", cfg, *j.args]
        return [sys.executable, "-m", "pipeline", j.kind, "--config", cfg, *j.args]

