"""Load test for an OpenAI-compatible endpoint (a replica or the router): a concurrency sweep.

    sqlgenie bench load --url http://127.0.0.1:8000 --concurrency 1 4 16 64 --requests 64 \
        --prompt-tokens 200 --max-tokens 128

Each level keeps `concurrency` streaming /v1/completions requests in flight until `requests` have
finished (at least 2 x concurrency), each generating exactly max_tokens (ignore_eos), prompts unique per
request (no prefix-cache hits); `--procs N` splits each level over N client processes (one process
tops out near 10k streamed events/s: the H200 at 256 concurrent needs several). Reports output tokens/s,
requests/s, TTFT and end-to-end latency p50/p99, the decode rate per stream after the first token (p50:
what vLLM's batch-1 figures quote, 1 / inter-token latency), and failures; `--json` prints the rows for
scripts. Also a steady-load mode for failover tests (`steady_load`: counts requests that failed before
their first token).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from dataclasses import asdict, dataclass, field

from serving.client import CompletionsClient

WORDS = ("select from where group order join table column count average customers orders products region "
         "revenue date year month total price quantity employee salary department").split()


def make_prompt(i: int, tokens: int) -> str:
    """~`tokens` tokens of SQL-ish words (about one token per word), unique from the first word on."""
    body = " ".join(WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(max(tokens - 4, 1)))
    return f"Request {i}: {body}"


@dataclass
class Level:
    concurrency: int
    requests: int
    failures: int
    seconds: float
    output_tokens: int
    tokens_per_s: float
    requests_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    # per stream, after the first token: (tokens - 1) / (latency - TTFT), p50. The batch-1 figure that
    # vLLM's own numbers quote as 1 / ITL (tok/s above also counts the time to the first token).
    decode_tok_s_p50: float = float("nan")
    errors: list[str] = field(default_factory=list)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


async def _one(session, url: str, model: str, prompt: str, max_tokens: int, headers: dict) -> tuple[float, float, int]:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    ttft = None
    tokens = 0
    async with session.post(url + "/v1/completions", json=body, headers=headers) as r:
        if r.status >= 400:
            raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:200]}")
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            data = json.loads(line[5:])
            if data.get("choices") and data["choices"][0].get("text") and ttft is None:
                ttft = time.perf_counter() - t0
            if data.get("usage"):
                tokens = data["usage"].get("completion_tokens", tokens)
    end = time.perf_counter() - t0
    return (ttft if ttft is not None else end), end, tokens


async def _collect(url: str, model: str, concurrency: int, n: int, prompt_tokens: int, max_tokens: int,
                   api_key: str | None, offset: int) -> dict:
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    ttfts, lats, decodes, errors = [], [], [], []
    out_tokens = 0
    counter = iter(range(n))
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async def worker():
            nonlocal out_tokens
            for i in counter:
                try:
                    ttft, lat, toks = await _one(session, url, model, make_prompt(offset + i, prompt_tokens), max_tokens, headers)
                    ttfts.append(ttft)
                    lats.append(lat)
                    if toks > 1 and lat > ttft:
                        decodes.append((toks - 1) / (lat - ttft))
                    out_tokens += toks
                except Exception as e:  # noqa: BLE001 - counted and reported, the load goes on
                    errors.append(f"{type(e).__name__}: {e}"[:200])

        start = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        end = time.time()
    return {"ttfts": ttfts, "lats": lats, "decodes": decodes, "tokens": out_tokens, "errors": errors, "start": start,
            "end": end}


def _collect_in_process(args: tuple) -> dict:
    return asyncio.run(_collect(*args))


def _level(url: str, model: str, concurrency: int, n: int, prompt_tokens: int, max_tokens: int,
           api_key: str | None, offset: int, procs: int = 1) -> Level:
    """One level; with procs > 1 the concurrency and requests are split over that many client processes
    (one Python process parsing every streamed event tops out near 10k events/s)."""
    procs = max(1, min(procs, concurrency))
    if procs == 1:
        parts = [asyncio.run(_collect(url, model, concurrency, n, prompt_tokens, max_tokens, api_key, offset))]
    else:
        import multiprocessing as mp

        shares = [(url, model, concurrency // procs + (k < concurrency % procs), n // procs + (k < n % procs),
                   prompt_tokens, max_tokens, api_key, offset + k * 10_000) for k in range(procs)]
        with mp.get_context("spawn").Pool(procs) as pool:
            parts = pool.map(_collect_in_process, shares)
    ttfts = [x for p in parts for x in p["ttfts"]]
    lats = [x for p in parts for x in p["lats"]]
    errors = [x for p in parts for x in p["errors"]]
    decodes = [x for p in parts for x in p["decodes"]]
    tokens = sum(p["tokens"] for p in parts)
    secs = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    return Level(concurrency, len(lats), len(errors), secs, tokens, tokens / secs, len(lats) / secs,
                 _pct(ttfts, .5) * 1e3, _pct(ttfts, .99) * 1e3, _pct(lats, .5) * 1e3, _pct(lats, .99) * 1e3,
                 decode_tok_s_p50=_pct(decodes, .5), errors=errors[:5])


def sweep(url: str, model: str | None = None, concurrency=(1, 4, 16, 64), requests: int | None = None,
          prompt_tokens: int = 200, max_tokens: int = 128, api_key: str | None = None, warmup: int = 2,
          procs: int = 1) -> list[Level]:

    model = model or CompletionsClient(url, api_key=api_key).model
    _level(url, model, 1, warmup, prompt_tokens, 8, api_key, 10**6)
    out = []
    for i, c in enumerate(concurrency):
        n = max(requests or 0, 2 * c)
        if warmup:
            # an untimed pass at this concurrency first: the first batches of a new size are slow on a fresh
            # server (measured ~20% at 64+ concurrent on the H200, 10-15% on CPU), which would favour
            # whichever target is measured second
            _level(url, model, c, c, prompt_tokens, min(16, max_tokens), api_key, 10**6 + i * 1000, procs)
        out.append(_level(url, model, c, n, prompt_tokens, max_tokens, api_key, i * 100_000, procs))
    return out


def table(levels: list[Level], label: str = "") -> str:
    rows = [f"| {label} | conc | req | fail | tok/s | req/s | TTFT p50 | TTFT p99 | lat p50 | lat p99 | decode tok/s/stream |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for lv in levels:
        rows.append(f"| {label} | {lv.concurrency} | {lv.requests} | {lv.failures} | {lv.tokens_per_s:,.1f} | "
                    f"{lv.requests_per_s:.2f} | {lv.ttft_p50_ms:.1f} | {lv.ttft_p99_ms:.1f} | {lv.latency_p50_ms:.1f} | "
                    f"{lv.latency_p99_ms:.1f} | {lv.decode_tok_s_p50:.1f} |")
    return "\n".join(rows)


class SteadyLoad:
    """`concurrency` threads sending small requests until stopped; counts outcomes (for failover tests)."""

    def __init__(self, url: str, model: str, concurrency: int = 4, max_tokens: int = 16):
        import requests

        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(requests.Session(), k), daemon=True)
                         for k in range(concurrency)]

    def _run(self, session, k: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                r = session.post(self.url + "/v1/completions", timeout=60,
                                 json={"model": self.model, "prompt": make_prompt(k * 10**6 + i, 40),
                                       "max_tokens": self.max_tokens, "temperature": 0})
                with self._lock:
                    if r.status_code == 200 and r.json()["choices"][0]["text"] is not None:
                        self.ok += 1
                    else:
                        self.failed.append(f"HTTP {r.status_code}: {r.text[:120]}")
            except Exception as e:  # noqa: BLE001 - a failure is what we count
                with self._lock:
                    self.failed.append(f"{type(e).__name__}: {str(e)[:120]}")

    def __enter__(self) -> "SteadyLoad":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=90)


def main() -> None:
    ap = argparse.ArgumentParser(prog="sqlgenie bench load")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests", type=int)
    ap.add_argument("--prompt-tokens", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--procs", type=int, default=1, help="client processes sharing each level's load")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    levels = sweep(a.url, a.model, a.concurrency, a.requests, a.prompt_tokens, a.max_tokens, procs=a.procs)
    print(json.dumps([asdict(lv) for lv in levels]) if a.json else table(levels, a.url))


if __name__ == "__main__":
    main()
