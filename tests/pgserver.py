"""A real PostgreSQL server for the tests, started from Debian's package (initdb + pg_ctl), gone afterwards.

    with postgres_server() as pg:             # a fresh cluster in a temporary folder, on a free port
        pg.url("shop")                        # postgresql://sqlgenie@127.0.0.1:PORT/shop (password auth over TCP)
        pg.socket_url("shop")                 # the same database through the unix socket in the folder (trust)
        pg.sql("shop", "CREATE TABLE ...")    # as the superuser, through the socket

The cluster lives in a folder of its own under /tmp (the postgres user must reach it: pytest's folders are
root's, mode 0700), TCP on 127.0.0.1 with scram-sha-256 passwords, the unix socket in that folder with trust.
initdb and the server refuse to run as root: as root they run as Debian's `postgres` user. On the way out the
server is stopped (pg_ctl stop -m fast, then the postmaster killed if it is still there) and the folder removed:
no process outlives the `with`, also when the test failed or was interrupted.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "sqlgenie", "s3cret-pw"


def pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:       # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@dataclass
class Server:
    root: Path
    port: int
    pid: int

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, db: str, user: str = USER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def socket_url(self, db: str, user: str = USER) -> str:
        return f"postgresql://{user}@/{db}?host={self.socket_dir}&port={self.port}"

    def sql(self, db: str, script: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=USER, dbname=db, autocommit=True) as c:
            c.execute(script)


@contextlib.contextmanager
def postgres_server():
    from serving.plan import free_ports

    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed: run scripts/setup.sh (it installs "
                           "Debian's postgresql package for the tests)")
    as_root = os.geteuid() == 0
    run_as = {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid} if as_root else {}
    root = Path(tempfile.mkdtemp(prefix="sqlgenie-pg-"))
    (root / "sock").mkdir()
    (root / "pw").write_text(PASSWORD + "\n")
    if as_root:
        for p in (root, root / "sock", root / "pw"):
            os.chown(p, pwd.getpwnam("postgres").pw_uid, run_as["group"])
    port = free_ports(1)[0]
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    pid = 0
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(root / "data"), "-U", USER, f"--pwfile={root / 'pw'}",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, env=env, timeout=120, **run_as)
        opts = f"-p {port} -k {root / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", opts, "-l", str(root / "log"),
                        "-w", "-t", "60", "start"], check=True, capture_output=True, env=env, timeout=90, **run_as)
        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        yield Server(root, port, pid)
    except subprocess.CalledProcessError as e:
        log = (root / "log").read_text()[-2000:] if (root / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {e.stderr.decode(errors='replace')[-2000:]}\n{log}") from None
    finally:
        if (root / "data" / "postmaster.pid").exists():
            pid = pid or int((root / "data" / "postmaster.pid").read_text().split()[0])
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "-t", "30", "stop"],
                           capture_output=True, env=env, timeout=60, **run_as)
        if pid:
            end = time.time() + 10
            while _alive(pid) and time.time() < end:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)       # its backends notice the postmaster is gone and exit
        shutil.rmtree(root, ignore_errors=True)
