"""Evaluation stage: generate SQL for held-out questions and score it by execution on SQLite.

    sqlgenie evaluate -c configs/smollm2-cpu.yaml [--adapter latest|RUN_ID|DIR] [--split ood|ood2] [--limit 500]
                      [--constrained] [--vote 8 [--no-resample]] [--repair] [--test-suite 3] [--backend auto|vllm|openai|transformers]

Prompts are rendered by sql/prompt.py under the evaluated model's contract (an adapter's own model card;
for a base model, this config's data settings) with the model's own tokenizer, as token ids; decoding is
greedy and stops at the end of turn. `--constrained` generates under a grammar built from each row's
schema (sql/grammar.py); `--vote N` samples N candidates beside the greedy answer, runs each on the row's
sample rows in the sandbox, drops those that fail and keeps the answer most candidates agree with
(sql/vote.py); rows where none runs get one more round of N, sampled hotter, and the vote covers both
(the label then ends `vote8x2`; `--no-resample` for one round); `--repair` reads each column where the
schema says it is when there is one reading (moved to the table of its FROM that has it, a missing table
joined by the one foreign-key path), as `ask` does (sql/repair.py). Splits: `bundled:test` (the generator's
held-out domains and template families), `ood` (the hand-written multi-table yardstick in data/ood/, scored
as a test suite on 3 generated databases by default), `ood2` (the second, independent one in data/ood2/,
scored the same way; for final figures only), or any Gretel file / Spider folder.

Writes metrics.json (execution accuracy, valid SQL, runs, exact match, counts per status, breakdowns by
complexity / difficulty / task / domain, latency per question) and rows.jsonl into a new folder: the run's
eval/<label>-<stamp>/ for a run's adapter, <home>/evals/<model>/<label>-<stamp>/ otherwise. A full fine-tune
(train.method full) is named the same way (`--adapter RUN`) and evaluated as the whole model in its model/.
"""
from __future__ import annotations

import contextlib
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from core import assets
from core.errors import ConfigError
from core.files import write_atomic
from core.modelinfo import read_card
from pipeline import runs
from pipeline.config import RunConfig
from pipeline.data import ood
from pipeline.data.loaders import load
from pipeline.evaluate import error_kinds
from pipeline.evaluate import generate as G
from pipeline.evaluate.scoring import score
from pipeline.evaluate.spider import score_suite
from pipeline.model import load_tokenizer
from sql.extract import extract_sql
from sql.grammar import schema_grammar
from sql.prompt import ChatFormatter, PromptContract
from sql.repair import repair_all
from sql.vote import RESAMPLING, choose


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict

    def summary(self) -> str:
        m = self.metrics
        return (f"{m['label']}: execution accuracy {m['execution_accuracy']:.1%} on {m['scored']} scorable rows "
                f"(valid SQL {m['valid_sql_rate']:.1%}, runs {m['runs_rate']:.1%}, exact {m['exact_match']:.1%}, "
                f"{m['unscorable']} unscorable; {m['latency_per_question_s'] * 1000:.0f} ms/question) in "
                f"{m['seconds']:.0f} s -> {self.out_dir}")


def load_rows(split: str, limit: int, seed: int) -> list[dict]:
    """Usable text-to-SQL rows of a split, shuffled by `seed`, at most `limit`."""
    path = ood.folder(split) if split in ood.SPLITS else split
    rows = [r for r in load(str(path)) if not r["bad"] and r["kind"] == "sql"]
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def _candidate_sqls(texts: list[str], schema: str, repair: bool) -> tuple[list[str], dict[str, list[str]]]:
    sqls = [extract_sql(t) for t in texts]
    return repair_all(sqls, schema) if repair else (sqls, {})


def none_ran(rows: list[dict], outputs: list[list[str]], repair: bool) -> list[int]:
    """Indexes of the rows where no candidate runs on the row's sample rows (as the vote sees them)."""
    return [i for i, (r, texts) in enumerate(zip(rows, outputs))
            if choose(_candidate_sqls(texts, r["schema"], repair)[0], f"{r['schema']}\n{r['sample_data']}").none_ran]


def score_predictions(rows: list[dict], outputs: list[list[str]], suite: int = 0,
                      vote: bool = False, repair: bool = False) -> tuple[list[dict], dict]:
    """Extract (with `repair`, columns read where the schema has them; with `vote`, choose among the candidates)
    and score each row; (per-row records, metrics).
    Rows with a database file (Spider / OOD) run against it, and against `suite` generated databases."""
    per_row, by = [], defaultdict(Counter)
    for r, texts in zip(rows, outputs):
        context = f"{r['schema']}\n{r['sample_data']}"
        agreement = None
        sqls, moves = _candidate_sqls(texts, r["schema"], repair)
        if vote and len(texts) > 1:
            picked = choose(sqls, context)
            pred, agreement = picked.sql, f"{picked.agreement}/{picked.candidates}"
        else:
            pred = sqls[0]
        repairs = moves.get(pred, [])
        if r.get("db_path"):
            s = score_suite(r["db_path"], r["sql"], pred, suite)
        else:
            s = score(context, r["sql"], pred, r["sql_task_type"])
        per_row.append({"id": r["id"], "question": r["question"], "gold": r["sql"], "raw": texts[0], "pred": pred,
                        "status": s.status, "valid": s.valid, "runs": s.runs, "exact": s.exact, "error": s.error,
                        "sql_complexity": r["sql_complexity"], "sql_task_type": r["sql_task_type"],
                        "domain": r["domain"], "agreement": agreement, "repairs": repairs})
        if s.status != "unscorable":
            for key in ("sql_complexity", "sql_task_type", "domain"):
                if r[key]:
                    by[f"{key}:{r[key]}"]["n"] += 1
                    by[f"{key}:{r[key]}"]["match"] += s.correct
    status = Counter(p["status"] for p in per_row)
    scored = len(per_row) - status["unscorable"]
    n = max(1, len(per_row))
    metrics = {
        "rows": len(per_row), "scored": scored, "unscorable": status["unscorable"],
        "execution_accuracy": status["match"] / scored if scored else 0.0,
        "valid_sql_rate": sum(p["valid"] for p in per_row) / n,
        "runs_rate": sum(p["runs"] for p in per_row) / n,
        "exact_match": sum(p["exact"] for p in per_row) / n,
        "status": dict(status),
        "breakdown": {k: {"n": v["n"], "accuracy": v["match"] / v["n"]} for k, v in sorted(by.items())},
    }
    return per_row, metrics


def _tokenizer(adapter: Path | None, cfg: RunConfig):
    """An adapter's own tokenizer (saved beside it at training), else the config's."""
    if adapter is not None and (adapter / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(adapter))
    return load_tokenizer(cfg)


def run(cfg: RunConfig, adapter: str | None = None, split: str = "bundled:test", limit: int = 500,
        label: str | None = None, backend: str = "auto", merge: bool = False, endpoint: str | None = None,
        suite: int = 0, constrained: bool = False, vote: int = 0, repair: bool = False,
        resample: bool = True) -> EvalResult:
    """backend auto: offline vLLM when the serving environment exists (an adapter is merged first: vLLM's
    CPU LoRA path is ~15x slower), else transformers. With `vote`, rows where no candidate ran get a second
    round of `vote` samples (`resample=False`: one round only)."""
    from tqdm import tqdm

    t0 = time.time()
    adapter_path, run_ = runs.resolve_adapter(adapter, cfg, whole_ok=True) if adapter else (None, None)
    whole = None            # a full fine-tune's model/ folder: evaluated as the model itself, nothing to merge
    if adapter_path is not None and not (adapter_path / "adapter_config.json").is_file():
        whole, adapter_path = adapter_path, None
    if backend == "openai" and not endpoint:
        raise ConfigError(["--backend openai needs --endpoint http://HOST:PORT (a vLLM replica or the router)"])
    if vote < 0 or limit < 1:
        raise ConfigError([p for p in (f"--vote {vote}: must be >= 0" if vote < 0 else "",
                                       f"--limit {limit}: must be >= 1" if limit < 1 else "") if p])
    card = read_card(adapter_path or whole) if (adapter_path or whole) else {}
    contract = PromptContract.from_card(card) if card.get("contract") else cfg.contract()
    label = label or ("adapter" if adapter_path else "model" if whole else "base")
    label += "+constrained" if constrained else ""
    label += f"+vote{vote}" + ("x2" if resample else "") if vote else ""
    label += "+repair" if repair else ""
    tok = _tokenizer(adapter_path or whole, cfg)
    fmt = ChatFormatter.for_contract(tok, contract)
    rows = load_rows(split, limit, cfg.data.seed)
    if split in ood.SPLITS and not suite:
        suite = ood.SUITE_DATABASES
    reqs = [G.Request(fmt.prompt_ids(r), schema_grammar(r["schema"]) if constrained else None) for r in rows]
    model_path = whole or assets.resolve(cfg.model.name_or_path)
    if backend == "auto":
        backend = "vllm" if G.vllm_available() else "transformers"
        merge = merge or backend == "vllm"
    t_gen = time.time()
    stop_ids = [tok.eos_token_id]
    with contextlib.ExitStack() as stack:
        if backend == "vllm" and merge and adapter_path is not None:
            from pipeline.export.merge import merge_adapter  # heavy: torch, peft

            d = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            merged = merge_adapter(model_path, adapter_path, d / "merged", tok, card)

        def generate(reqs: list[G.Request], **kw) -> tuple[list[list[str]], dict]:
            if backend == "vllm" and merge and adapter_path is not None:
                return G.generate_vllm(merged, None, reqs, stop_ids, **kw)
            if backend == "vllm":
                return G.generate_vllm(model_path, adapter_path, reqs, stop_ids, lora_rank=cfg.train.lora.r, **kw)
            with tqdm(total=len(reqs), desc=f"generating ({label})" + (f" via {endpoint}" if endpoint else ""),
                      unit="row") as bar:
                if backend == "openai":
                    return G.generate_openai(endpoint, reqs, [tok.eos_token], progress=bar.update, **kw)
                return G.generate_transformers(model_path, adapter_path, reqs, tok, progress=bar.update, **kw), {}

        outs, info = generate(reqs, candidates=vote)
        if vote and resample:       # rows where no candidate ran: one more round, hotter (sql/vote.py)
            again = none_ran(rows, outs, repair)
            info["resampled_rows"] = len(again)
            if again:
                more, _ = generate([reqs[i] for i in again], candidates=vote, greedy=False, sampling=RESAMPLING,
                                   seed=1)
                for i, texts in zip(again, more):
                    outs[i] = outs[i] + texts
    info["generation_s"] = time.time() - t_gen
    info["rows_per_s"] = len(rows) / info["generation_s"]

    per_row, metrics = score_predictions(rows, outs, suite, vote=bool(vote), repair=repair)
    kinds = [error_kinds.kinds_of(p) for p in per_row]
    for p, ks in zip(per_row, kinds):
        p["error_kind"] = ks[0] if ks else None
    metrics["error_kinds"] = error_kinds.taxonomy(per_row, kinds)
    metrics.update({"label": label, "adapter": str(adapter_path or whole) if (adapter_path or whole) else None,
                    "run": run_.id if run_ else None, "model": cfg.model.name_or_path, "split": split,
                    "backend": backend + ("+merged" if merge and adapter_path else ""), "generation": info,
                    "constrained": constrained, "vote_candidates": vote, "repair": repair,
                    "repaired_rows": sum(bool(p["repairs"]) for p in per_row), "contract": contract.to_dict(),
                    "latency_per_question_s": info["generation_s"] / max(1, len(rows)),
                    "test_suite_databases": suite, "seconds": time.time() - t0})
    out = run_.eval_dir(label) if run_ else runs.base_eval_dir(cfg.model.name_or_path, label)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    write_atomic(out / "rows.jsonl", "".join(json.dumps(p) + "\n" for p in per_row))
    return EvalResult(out, metrics)
