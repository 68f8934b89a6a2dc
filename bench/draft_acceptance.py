"""Draft tokens a head would get accepted, on the served model's own greedy answers (as vLLM sees them).

    sqlgenie bench draft_acceptance MERGED HEAD [HEAD ...] [--rows 100] [--out FILE]

For each head: accepted draft tokens per verify step (3 proposed) and step-1 hit rates by token kind
(pieces of identifiers, SQL keywords, punctuation and numbers) on the first --rows rows of the bundled test
split (held-out domains and template families) and of the OOD yardstick (hand-written schemas; as training
rows are: CREATE TABLE statements as the schema, INSERT rows as sample rows, which the prompt carries only
where the model's contract says so; bench/latency_b1.py pastes the whole file as the schema). The answers
are the served model's own greedy ones, so the positions are those vLLM drafts at. A report, not a knob:
heads are chosen on the test split by pipeline/export/draft_head.py; the OOD figures only describe them.
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from core.modelinfo import read_card
from pipeline.data import ood
from pipeline.export import draft_head as dh
from pipeline.export.draft_rows import bundled_rows
from sql.prompt import ChatFormatter, PromptContract
from sql.statements import split_context

KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "BY", "GROUP", "ORDER", "AS", "ON", "JOIN", "COUNT", "SUM", "AVG",
            "MAX", "MIN", "DESC", "ASC", "LIMIT", "IN", "NOT", "IS", "NULL", "HAVING", "DISTINCT", "INNER", "LEFT",
            "CASE", "WHEN", "THEN", "ELSE", "END", "LIKE", "WITH", "UNION", "UPDATE", "SET", "DELETE", "INSERT"}


def ood_rows(n: int) -> list[dict]:
    sch, out = ood.schemas(), []
    for q in ood.questions()[:n]:
        schema, sample = split_context(sch[q["db_id"]])
        out.append({"schema": schema, "sample_data": sample, "question": q["question"], "sql": q["query"]})
    return out


def kind(piece: str) -> str:
    w = piece.strip()
    if w.upper() in KEYWORDS:
        return "keyword"
    return "identifier" if w and (w[0].isalpha() or w[0] == "_") else "other"


def greedy_answers(target, tok, fmt, rows, device, batch: int = 32) -> list[tuple[list[int], int]]:
    """(prompt + the model's greedy answer, prompt length) per row."""
    import torch

    prompts = [fmt.encode(fmt.render(r)[0]) for r in rows]
    out = []
    for b in range(0, len(prompts), batch):
        chunk = prompts[b: b + batch]
        L = max(map(len, chunk))
        ids = torch.tensor([[tok.pad_token_id or 0] * (L - len(p)) + p for p in chunk], device=device)
        mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in chunk], device=device)
        gen = target.generate(input_ids=ids, attention_mask=mask, max_new_tokens=160, do_sample=False,
                              pad_token_id=tok.pad_token_id or 0)
        for p, g in zip(chunk, gen[:, L:].tolist()):
            g = g[: g.index(tok.eos_token_id) + 1] if tok.eos_token_id in g else g
            out.append((p + g, len(p)))
    return out


def main() -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("heads", nargs="+")
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--out")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_flush_denormal(True)
    model_dir = Path(a.model)
    target = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    contract = PromptContract.from_card(read_card(model_dir))
    fmt = ChatFormatter.for_contract(tok, contract)
    cfg = json.loads((model_dir / "config.json").read_text())
    sets = {"test": bundled_rows("test", a.rows), "ood": ood_rows(a.rows)}
    feats = {name: dh.served_features(target, greedy_answers(target, tok, fmt, rows, device), device)
             for name, rows in sets.items()}
    report = {}
    for head_dir in a.heads:
        head = dh.build_head(cfg).to(device)
        head.load_state_dict({k: v.float() for k, v in load_file(str(Path(head_dir) / "model.safetensors")).items()},
                             strict=False)
        head.eval()
        for name, fs in feats.items():
            seen, hit = collections.Counter(), collections.Counter()
            with torch.no_grad():
                for f in fs:
                    _, hits, first = dh.draft_losses(head, target, [f], 3, device)
                    for pos in first[0].nonzero().flatten().tolist():
                        if pos + 2 < len(f[0]):
                            k = kind(tok.decode([int(f[0][pos + 2])]))
                            seen[k] += 1
                            hit[k] += bool(hits[0, 0, pos])
            m = dh.measure_acceptance(head, target, fs, 3, 8192, device)
            report[f"{head_dir} | {name}"] = {"accepted_per_step": round(m["accepted_per_step"], 3),
                                              **{f"hit_{k}": round(hit[k] / seen[k], 3) for k in sorted(seen)},
                                              "positions": sum(seen.values())}
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1))
    print("| head | rows | accepted per step (3 proposed) | step-1 hit: identifiers / keywords / other | positions |")
    print("|---|---|---|---|---|")
    for key, r in report.items():
        print(f"| {key} | {r['accepted_per_step']:.2f} | {r.get('hit_identifier', 0):.2f} / "
              f"{r.get('hit_keyword', 0):.2f} / {r.get('hit_other', 0):.2f} | {r['positions']} |")


if __name__ == "__main__":
    main()
