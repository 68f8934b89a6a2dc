"""Step 1's doors on a GPU: a token-gated serve job of CUDA replicas, asked from the machine's own network
address as an outside client would, then a hung replica (SIGSTOP) under a request. One device call.

    SQLGENIE_TOKEN=... PYTHONPATH=/tmp/vsite:/tmp/site:. python3 bench/device_gate.py MODEL_DIR OUT_DIR

MODEL_DIR: `embedded:smollm2-135m-instruct` for a dry run on a CPU machine, or a config-only folder (bench/device_gpu.py model-config; served with --load-format dummy: the doors
do not care what the weights say). Through pipeline.jobs.JobStore (what the New-job page does) it submits a
serve job binding 0.0.0.0 with SQLGENIE_TOKEN set, waits until it answers, then checks:
- the gate on the deployment's port: /v1/models, /v1/completions, /metrics, /workers with no token, a wrong
  one and the right one (401 / 401 / 200 expected); /health open;
- the router's own port and the replica's port from the machine's non-loopback address (refused: both bind
  127.0.0.1), and the replica on 127.0.0.1 with no token (401: VLLM_API_KEY) and with it (200);
- the token on no process's command line and in no file of the deployment's folder;
- the replica's whole process group SIGSTOPped while a request is in flight: when the supervisor notes the
  hang, when the replica answers again, what the in-flight request got and after how long, and a request after;
- cancel: no vLLM process left.
Writes OUT_DIR/gate.json; prints a table last.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from device_gpu import wait_serving  # noqa: E402


def outside_address() -> str:
    """This machine's address on its first non-loopback interface (a UDP connect sends nothing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 1))
        addr = s.getsockname()[0]
    except OSError:
        addr = ""
    finally:
        s.close()
    if not addr or addr.startswith("127."):
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        addr = next((a for a in out if not a.startswith("127.") and ":" not in a), "")
    return addr


def code(method: str, url: str, token: str | None, **kw) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.request(method, url, headers=headers, timeout=kw.pop("timeout", 30), **kw)
        return str(r.status_code)
    except requests.ConnectionError:
        return "refused"
    except requests.Timeout:
        return "timeout"


def token_on_command_lines(token: str) -> list[str]:
    hits = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmd:
                shown = cmd.replace(bytes(1), b" ")[:120]
                hits.append(f"{p.name}: {shown!r}")
    return hits


def token_in_files(folder: Path, token: str) -> list[str]:
    return [str(f) for f in folder.rglob("*") if f.is_file() and token.encode() in f.read_bytes()]


def vllm_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [l for l in out if "vllm" in l and "ps -eo" not in l and "device_gate" not in l]


def main() -> None:
    model, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    token = os.environ.setdefault("SQLGENIE_TOKEN", secrets.token_urlsafe(24))
    from pipeline.jobs import JobStore
    from serving import deployments as D

    res: dict = {"checks": [], "hang": {}}
    name = "gated"
    cpu = model.startswith("embedded:")   # a dry run of this script on a CPU machine, with the embedded model
    cfg = (f"model: {model}\nname: {name}\nreplicas: 1\nhost: 0.0.0.0\nwarmup_requests: 3\n"
           + ("" if cpu else "max_model_len: 4096\nextra_args: [--load-format, dummy]\n"))
    store = JobStore()
    t0 = time.time()
    job = store.submit("serve", cfg, gpus=None if cpu else [0])
    st = wait_serving(store, job, name, 420)
    res["up_s"] = round(time.time() - t0, 1)
    router, rep = st["router"], st["replicas"][0]
    ip = outside_address()
    res.update(address=ip, router_port=router["port"], internal_port=router["internal_port"],
               replica_port=rep["port"], request_timeout_s=router["request_timeout_s"],
               replica_device=rep.get("device"))
    print(f"serve job {job} up in {res['up_s']} s on {ip}: gate :{router['port']}, router :{router['internal_port']}, "
          f"replica :{rep['port']} ({rep.get('device')}), request timeout {router['request_timeout_s']} s", flush=True)
    gate = f"http://{ip}:{router['port']}"
    body = {"model": name, "prompt": "SELECT", "max_tokens": 8, "temperature": 0}

    def check(what: str, expected: str, got: str) -> None:
        res["checks"].append({"what": what, "expected": expected, "got": got, "ok": got == expected})
        print(f"{'ok ' if got == expected else 'BAD'} {what}: expected {expected}, got {got}", flush=True)

    for path in ("/v1/models", "/metrics", "/workers"):
        check(f"gate GET {path}, no token", "401", code("GET", gate + path, None))
        check(f"gate GET {path}, wrong token", "401", code("GET", gate + path, "wrong-" + token[:6]))
    check("gate GET /v1/models, right token", "200", code("GET", gate + "/v1/models", token))
    check("gate POST /v1/completions, no token", "401", code("POST", gate + "/v1/completions", None, json=body))
    check("gate POST /v1/completions, right token", "200", code("POST", gate + "/v1/completions", token, json=body))
    check("gate GET /health, no token (open)", "200", code("GET", gate + "/health", None))
    named = requests.post(gate + "/v1/completions", json=body, headers={"Authorization": f"Bearer {token}"},
                          timeout=60).headers.get("x-sqlgenie-replica", "")
    check("the answer names its replica (x-sqlgenie-replica through router and gate)", f"0@{rep.get('device')}", named)
    check("router's own port from the outside address", "refused",
          code("GET", f"http://{ip}:{router['internal_port']}/v1/models", token, timeout=5))
    check("replica port from the outside address", "refused",
          code("GET", f"http://{ip}:{rep['port']}/v1/models", token, timeout=5))
    check("replica on 127.0.0.1, no token (VLLM_API_KEY)", "401",
          code("GET", f"http://127.0.0.1:{rep['port']}/v1/models", None))
    check("replica on 127.0.0.1, right token", "200", code("GET", f"http://127.0.0.1:{rep['port']}/v1/models", token))
    hits = token_on_command_lines(token)
    check("processes with the token on their command line", "0", str(len(hits)))
    files = token_in_files(D.state_dir(name), token)
    check("files of the deployment's folder holding the token", "0", str(len(files)))
    res["token_hits"] = hits + files

    # A hung replica: alive, silent. The supervisor should stop it whole and start it again.
    pgid = rep["proc"]["pgid"]
    inflight: dict = {}

    def ask() -> None:
        t = time.time()
        try:
            r = requests.post(gate + "/v1/completions", json={**body, "max_tokens": 4},
                              headers={"Authorization": f"Bearer {token}"}, timeout=400)
            inflight.update(status=r.status_code, body=r.text[:200])
        except requests.RequestException as e:
            inflight.update(status="error", body=str(e)[:200])
        inflight["s"] = round(time.time() - t, 1)

    os.killpg(pgid, signal.SIGSTOP)
    t_stop = time.time()
    print(f"SIGSTOP replica 0 (pgid {pgid}); one request in flight", flush=True)
    th = threading.Thread(target=ask, daemon=True)
    th.start()
    noted = back = None
    while time.time() - t_stop < 400:
        s = D.load(name)
        if noted is None and any(e.get("t", 0) >= t_stop and "hung" in e.get("what", "")
                                 for e in s.get("events", [])):
            noted = round(time.time() - t_stop, 1)
        r0 = D.status(name)["replicas"][0]
        if r0.get("health") == "healthy" and r0["proc"]["pgid"] != pgid:
            back = round(time.time() - t_stop, 1)
            break
        time.sleep(2)
    th.join(timeout=max(1, 420 - (time.time() - t_stop)))
    after = code("POST", gate + "/v1/completions", token, json=body, timeout=60)
    events = [e for e in D.load(name).get("events", []) if e.get("t", 0) >= t_stop - 1]
    res["hang"] = {"hang_timeout_s": 30, "noted_s": noted, "back_s": back, "inflight": inflight,
                   "request_after": after, "events": events}
    print(f"hang: noted after {noted} s, replica answering again after {back} s; in-flight request "
          f"{inflight.get('status')} after {inflight.get('s')} s; a request after: {after}", flush=True)
    for e in events[:8]:
        print("  event:", e, flush=True)

    store.cancel(job)
    t_c = time.time()
    while vllm_processes() and time.time() - t_c < 60:
        time.sleep(1)
    left = vllm_processes()
    res["left_after_cancel"] = left
    res["cancel_s"] = round(time.time() - t_c, 1)
    (out / "gate.json").write_text(json.dumps(res, indent=2, default=str))
    ok = sum(c["ok"] for c in res["checks"])
    print("\n| check | expected | got |\n|---|---|---|")
    for c in res["checks"]:
        print(f"| {c['what']} | {c['expected']} | {c['got']} |")
    print(f"\n{ok} of {len(res['checks'])} door checks as expected")
    print("| hang (SIGSTOP replica 0) | noted after s | answering again after s | in-flight request | after |\n"
          "|---|---|---|---|---|")
    print(f"| hang_timeout_s 30, request timeout {res['request_timeout_s']} s | {noted} | {back} | "
          f"{inflight.get('status')} in {inflight.get('s')} s | {after} |")
    print(f"cancel: {len(left)} vLLM processes left after {res['cancel_s']} s")


if __name__ == "__main__":
    main()
