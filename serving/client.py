"""Client for an OpenAI-compatible server (a vLLM replica or vllm-router): the reference design's contract.

The caller renders the chat template itself and POSTs the prompt to `/v1/completions` with temperature 0
(the reference design's contract). The prompt may be text or, better, the token ids training used
(sql/prompt.py): then the server adds nothing (no second BOS) and `prompt_token_ids` in the answer says what it
saw. Options: n candidates in one request (sampling), a grammar the output must follow (vLLM structured
outputs). Timeouts and bounded retries with backoff (connection errors, 5xx, 429) are built in. A replica
that answers garbage (a 200 whose body is not JSON, or JSON without a completion) is treated like a failed
send: retried (through the router the retry goes to the next replica), then an EndpointError that says
which server sent what.

    from serving.client import CompletionsClient
    c = CompletionsClient("http://127.0.0.1:8000", model="sqlgenie")
    out = c.complete(token_ids, max_tokens=160, stop=["<|eot_id|>"])
    out.text, out.texts (n > 1), out.prompt_token_ids
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from core import access
from core.errors import SqlgenieError

REPLICA_HEADER = "x-sqlgenie-replica"     # set by our replicas (serving/vllm_plugins/sqlgenie_replica_header.py)


class EndpointError(SqlgenieError):
    """The OpenAI endpoint (a replica or the router) could not be reached or kept failing after the retries."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    texts: list[str] = field(default_factory=list)        # every choice (n > 1), the first is `text`
    prompt_token_ids: list[int] | None = None              # what the server tokenized / received
    replica: str = ""                                      # which of our replicas answered ("0@cpu:0"), if ours


class CompletionsClient:
    def __init__(self, base_url: str, model: str | None = None, timeout_s: float = 120.0, retries: int = 3,
                 api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        key = access.token() if api_key is None else api_key      # our own deployments ask for the console token
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._local = threading.local()
        self.model = model or self.models()[0]

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "s"):
            self._local.s = requests.Session()
        return self._local.s

    def _request(self, method: str, path: str, shape=None, **kw) -> tuple[dict, str]:
        """(JSON answer, the replica that wrote it: x-sqlgenie-replica, '' if not ours) of a request;
        `shape(answer)` returns what is wrong with a 2xx answer ('' if nothing)."""
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = self._session().request(method, self.base_url + path, timeout=self.timeout_s,
                                            headers=self.headers, **kw)
                if r.status_code < 400:
                    try:
                        out = r.json()
                    except ValueError:
                        out, wrong = None, "not JSON"
                    else:
                        wrong = shape(out) if shape else ""
                    if not wrong:
                        return out, r.headers.get(REPLICA_HEADER, "")
                    last = f"malformed answer ({wrong}), body starts {r.text[:120]!r}"
                else:
                    last = f"HTTP {r.status_code}: {r.text[:300]}"
                    if r.status_code not in (429, 500, 502, 503, 504):
                        break  # a client error will not get better by retrying
            except requests.RequestException as e:
                last = f"{type(e).__name__}: {e}"
            if attempt < self.retries:
                time.sleep(min(2.0, 0.25 * 2 ** attempt))
        raise EndpointError(f"{method} {self.base_url}{path} failed: {last}")

    def models(self) -> list[str]:
        data = self._request("GET", "/v1/models",
                             shape=lambda o: "" if isinstance(o, dict) else "not an object")[0].get("data", [])
        if not data:
            raise EndpointError(f"{self.base_url} serves no model")
        return [m["id"] for m in data]

    def complete(self, prompt: str | list[int], max_tokens: int = 160, stop: list[str] | None = None, n: int = 1,
                 temperature: float = 0.0, seed: int | None = None, grammar: str | None = None,
                 return_token_ids: bool = False, top_p: float | None = None) -> Completion:
        """One request; `prompt` as text or token ids (then no special tokens are added by the server)."""
        t0 = time.time()
        body = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "n": n}
        if stop:
            body["stop"] = stop
        if seed is not None:
            body["seed"] = seed
        if top_p is not None:
            body["top_p"] = top_p
        if grammar:
            body["structured_outputs"] = {"grammar": grammar}
        if return_token_ids:
            body["return_token_ids"] = True
        out, replica = self._request("POST", "/v1/completions", shape=_no_text, json=body)
        usage = out.get("usage") or {}
        choices = sorted(out["choices"], key=lambda c: c.get("index", 0))
        return Completion(choices[0]["text"], usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                          time.time() - t0, [c["text"] for c in choices], choices[0].get("prompt_token_ids"), replica)


def _no_text(out) -> str:
    """What is wrong with a completion answer that has no choices[0].text ('' if nothing)."""
    choices = out.get("choices") if isinstance(out, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "no choices"
    return "" if isinstance(choices[0].get("text"), str) else "choices[0] has no text"
