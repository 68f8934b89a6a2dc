"""Export stage: merge the adapter, write GGUF, quantize with llm-compressor, optionally push to the Hub.

    sqlgenie export -c configs/smollm2-cpu.yaml [export.adapter=latest|RUN_ID|DIR] \
        'export.formats=[merged,gguf-q8_0,gguf-f16,fp8,w4a16]'

Writes the run's export/<format>/ (merged, gguf-q8_0/model-q8_0.gguf, fp8, w4a16, ...) and export.json +
a table of sizes, write times, load times and verification figures. The adapter's model card (the prompt
contract, with the run's latest evaluation added) goes into every format: sqlgenie.json beside merged and
quantized weights, a `sqlgenie.card` key inside GGUF files. Every output is built in a hidden staging
folder and published atomically when complete and verified (core/files.py), so a failed or killed export
never leaves a folder that looks finished, and a previous export of the same format is replaced only
then. One export of a run at a time. Free disk space is checked first. Quantized formats start from the
merged bf16 model. `export.draft_head` also trains an EAGLE draft head into merged/draft
(pipeline/export/draft_head.py), which the launcher serves on GPUs.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from core import assets
from core.errors import ConfigError, SqlgenieError
from core.files import FileLock, publish, staging_dir, write_atomic
from core.modelinfo import DRAFT_DIR, read_card
from pipeline import runs
from pipeline.config import RunConfig
from pipeline.data.loaders import load
from pipeline.export import draft_head, gguf_file, merge, quantize
from pipeline.export.hub import push
from pipeline.model import load_tokenizer
from sql.prompt import ChatFormatter, PromptContract


class ExportError(SqlgenieError):
    """An export could not be made (disk space, inputs)."""


@dataclass
class ExportResult:
    out_dir: Path
    items: list[dict]

    def summary(self) -> str:
        lines = [f"exports in {self.out_dir}:", "| format | size MB | write s | load s | check |", "|---|---|---|---|---|"]
        for it in self.items:
            lines.append(f"| {it['format']} | {it['size_mb']:.1f} | {it['write_s']:.1f} | {it.get('load_s', 0):.1f} | "
                         f"{it.get('check', '')} |")
        return "\n".join(lines)


def folder_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def check_disk(where: Path, need_bytes: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if free < need_bytes:
        raise ExportError(f"not enough disk space in {where}: the export needs about {need_bytes / 2**30:.1f} GiB, "
                          f"{free / 2**30:.1f} GiB free. Free some space or set export.output_dir elsewhere")


def _param_bytes(model_dir: Path) -> int:
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))


def _estimate(fmt: str, base_bytes_bf16: int) -> int:
    per = {"merged": 1.0, "gguf-f16": 1.0, "gguf-bf16": 1.0, "gguf-q8_0": 0.55, "fp8": 0.55, "nvfp4": 0.35, "w4a16": 0.35}
    return int(base_bytes_bf16 * per.get(fmt, 1.0)) + 50 * 2**20


def _sql_rows(cfg: RunConfig) -> list[dict]:
    """The run's good text-to-SQL training rows (calibration and the draft head learn from them)."""
    return [r for s in cfg.data.sources for r in load(s.path) if not r["bad"] and r["kind"] == "sql"]


def _calibration(cfg: RunConfig, tok, contract: PromptContract) -> list[str]:
    """Training prompts + their SQL, rendered under the model's own contract."""
    fmt = ChatFormatter.for_contract(tok, contract)
    return quantize.calibration_texts(_sql_rows(cfg), lambda r: "".join(fmt.render(r)), cfg.export.calibration_samples,
                                      cfg.data.seed)


def run(cfg: RunConfig, progress=print) -> ExportResult:
    e = cfg.export
    adapter, run_ = runs.resolve_adapter(e.adapter, cfg, whole_ok=True)   # or a full fine-tune's model/
    base = assets.resolve(cfg.model.name_or_path)
    if not (base / "config.json").is_file():
        raise ConfigError([f"model.name_or_path: {base} has no config.json"])
    tok = load_tokenizer(cfg)
    card = _card(adapter, run_)
    contract = PromptContract.from_card(card) if card.get("contract") else cfg.contract()
    out = Path(e.output_dir) if e.output_dir else (run_.export_dir if run_ else adapter.parent / "export")
    with FileLock(out / ".export.lock", f"exports of {run_.id if run_ else adapter}"):
        return _export(cfg, adapter, base, tok, card, contract, out, progress)


def _card(adapter: Path, run_: runs.Run | None) -> dict:
    """The adapter's model card, with the run's latest evaluation added."""
    card = dict(read_card(adapter))
    if run_ is not None and run_.evals():
        m = json.loads((run_.evals()[-1] / "metrics.json").read_text())
        card["evaluation"] = {k: m.get(k) for k in ("split", "rows", "execution_accuracy", "valid_sql_rate",
                                                    "runs_rate", "exact_match", "constrained", "vote_candidates")}
    return card


def _draft(cfg: RunConfig, merged_dir: Path, progress) -> dict:
    """An EAGLE draft head for the merged model (merged/draft), from the run's own training rows; 100 of them
    are held out to measure how many proposed tokens the model accepts."""
    t = time.time()
    rows = _sql_rows(cfg)
    random.Random(cfg.data.seed).shuffle(rows)
    held, train = rows[:100], rows[100: 100 + cfg.export.draft_rows]
    tmp = staging_dir(merged_dir, DRAFT_DIR)
    report = draft_head.train_draft_head(merged_dir, train, held, out_dir=tmp, progress=progress)
    publish(tmp, merged_dir / DRAFT_DIR)
    return {"format": "draft", "path": str(merged_dir / DRAFT_DIR), "write_s": time.time() - t,
            "size_mb": folder_size(merged_dir / DRAFT_DIR) / 1e6,
            "check": f"{report['accepted_per_step']:.2f} proposed tokens accepted per step on {report['held_out_rows']} "
                     f"held-out rows", "report": report}


def _export(cfg: RunConfig, adapter: Path, base: Path, tok, card: dict, contract: PromptContract, out: Path,
            progress) -> ExportResult:
    e = cfg.export
    formats = list(dict.fromkeys(e.formats))
    notes: list[str] = []
    if "auto" in formats:
        cap = e.target_gpu or quantize.local_capability()
        picked, why = quantize.pick_format("auto", cap)
        notes.append(f"auto -> {picked}: {why}")
        progress(notes[-1])
        formats = [picked if f == "auto" else f for f in formats]
        formats = list(dict.fromkeys(formats))
    base_bytes = _param_bytes(base)
    need = sum(_estimate(f, base_bytes) for f in formats) + (0 if "merged" in formats else base_bytes)
    check_disk(out, need)

    items: list[dict] = []
    calibration: list[str] = []

    def calib() -> list[str]:  # the training data is read once, only if some format needs it
        if not calibration:
            calibration.extend(_calibration(cfg, tok, contract))
        return calibration

    # every format starts from the merged bf16 model; it is published only when asked for
    merged_dir = out / "merged"
    t = time.time()
    src = staging_dir(out, "merged")
    merge.merge_adapter(base, adapter, src, tok, {**card, "contract": contract.to_dict()})
    item = {"format": "merged", "path": str(merged_dir), "write_s": time.time() - t}
    if e.verify:
        item["verify"] = merge.verify_merge(base, adapter, src, tok)
        item["check"] = f"top-1 {item['verify']['top1_agreement']:.0%}, max diff {item['verify']['max_abs_logit_diff']}"
    if "merged" in formats:
        src = publish(src, merged_dir)
        item["size_mb"] = folder_size(merged_dir) / 1e6
        items.append(item)
        progress(f"merged -> {merged_dir}")
        if e.draft_head:
            items.append(_draft(cfg, merged_dir, progress))
    try:
        for f in formats:
            if f == "merged":
                continue
            t = time.time()
            tmp = staging_dir(out, f)
            if f.startswith("gguf-"):
                kind = f.split("-", 1)[1]
                gguf_path = gguf_file.write_gguf(src, tmp / f"model-{kind}.gguf", kind, name=cfg.name)
                item = {"format": f, "write_s": time.time() - t}
                if e.verify:
                    t2 = time.time()
                    item["verify"] = gguf_file.verify_gguf(src, gguf_path)
                    item["load_s"] = time.time() - t2
                    v = item["verify"]
                    if not v["tokenizer_ids_equal"]:
                        raise gguf_file.GGUFExportError(f"{f}: the GGUF tokenizer does not reproduce the source's token ids")
                    item["check"] = f"top-1 {v['top1_agreement']:.0%}, max diff {v['max_abs_logit_diff']}, same token ids"
            else:
                texts = calib() if (f in quantize.NEEDS_CALIBRATION or e.kv_cache_fp8) else None
                quantize.quantize(src, tmp, f, texts, e.kv_cache_fp8, cfg.data.max_seq_len)
                item = {"format": f, "write_s": time.time() - t,
                        "calibration_samples": len(texts) if texts else 0, "kv_cache_fp8": e.kv_cache_fp8}
                if e.verify:
                    t2 = time.time()
                    item["verify"] = quantize.verify_quantized(src, tmp, calib()[:4])
                    item["load_s"] = time.time() - t2
                    item["check"] = f"top-1 {item['verify']['top1_agreement']:.0%} vs bf16"
            final = publish(tmp, out / f)
            item["path"] = str(final)
            item["size_mb"] = folder_size(final) / 1e6
            items.append(item)
            progress(f"{f} -> {final} ({item['size_mb']:.0f} MB, {item['write_s']:.0f} s)")
    finally:
        if "merged" not in formats:  # the scratch merge
            shutil.rmtree(src, ignore_errors=True)

    result = ExportResult(out, items)
    record = {"adapter": str(adapter), "base": str(base), "notes": notes, "items": items}
    if e.push_repo:

        target = merged_dir if "merged" in formats else Path(items[0]["path"])
        record["pushed"] = push(target, e.push_repo, e.private)
    write_atomic(out / "export.json", json.dumps(record, indent=2))
    write_atomic(out / "export.md", result.summary() + "\n")
    return result
