"""Export stage: merge the adapter, write GGUF, quantize with llm-compressor, optionally push to the Hub.

    python -m pipeline export -c configs/smollm2-cpu.yaml export.formats=[merged,gguf-q8_0,gguf-f16,fp8,w4a16]

Writes <home>/runs/<name>/export/<format>/ (merged, gguf-q8_0/model-q8_0.gguf, fp8, w4a16, ...) and
export.json + a table of sizes, write times, load times and verification figures. Every output is built
in a hidden `.partial` folder and renamed into place when complete and verified, so a failed or killed
export never leaves a folder that looks finished; a previous export of the same format is replaced only
then. Free disk space is checked first. Quantized formats start from the merged bf16 model.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import ConfigError, SqlgenieError


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


def publish(tmp: Path, final: Path) -> Path:
    """Rename a finished `.partial` folder into place; an older export is removed only after that."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.replaced-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def partial_dir(out: Path, name: str) -> Path:
    """An empty hidden `.NAME.partial` folder in `out` (left over ones from a killed export are cleared)."""
    tmp = out / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


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


def _calibration(cfg: RunConfig, tok) -> list[str]:
    from pipeline.data.formatting import ChatFormatter
    from pipeline.data.loaders import load
    from pipeline.export.quantize import calibration_texts

    fmt = ChatFormatter(tok, cfg.data.system_prompt, cfg.data.include_sample_rows)
    rows = [r for s in cfg.data.sources for r in load(s.path) if not r["bad"] and r["kind"] == "sql"]
    return calibration_texts(rows, lambda r: fmt.prompt(r) + r["sql"] + (tok.eos_token or ""),
                             cfg.export.calibration_samples, cfg.data.seed)


def run(cfg: RunConfig, progress=print) -> ExportResult:
    from pipeline import assets
    from pipeline.data.prepare import load_tokenizer
    from pipeline.export import gguf_file, merge, quantize

    e = cfg.export
    adapter = cfg.run_dir() / "train" / "adapter" if e.adapter == "latest" else Path(e.adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError([f"export.adapter: {adapter} has no adapter_config.json (train first, or give an adapter folder)"])
    base = assets.resolve(cfg.model.name_or_path)
    if not (base / "config.json").is_file():
        raise ConfigError([f"model.name_or_path: {base} has no config.json"])
    tok = load_tokenizer(cfg)
    out = Path(e.output_dir) if e.output_dir else cfg.run_dir() / "export"
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
            calibration.extend(_calibration(cfg, tok))
        return calibration

    # every format starts from the merged bf16 model; it is published only when asked for
    merged_dir = out / "merged"
    t = time.time()
    src = partial_dir(out, "merged")
    card = merge.model_card(cfg.model.name_or_path, adapter, _card_extras(cfg))
    merge.merge_adapter(base, adapter, src, tok, card)
    item = {"format": "merged", "path": str(merged_dir), "write_s": time.time() - t}
    if e.verify:
        item["verify"] = merge.verify_merge(base, adapter, src, tok)
        item["check"] = f"top-1 {item['verify']['top1_agreement']:.0%}, max diff {item['verify']['max_abs_logit_diff']}"
    if "merged" in formats:
        src = publish(src, merged_dir)
        item["size_mb"] = folder_size(merged_dir) / 1e6
        items.append(item)
        progress(f"merged -> {merged_dir}")
    try:
        for f in formats:
            if f == "merged":
                continue
            t = time.time()
            tmp = partial_dir(out, f)
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
        from pipeline.export.hub import push

        target = merged_dir if "merged" in formats else Path(items[0]["path"])
        record["pushed"] = push(target, e.push_repo, e.private)
    (out / "export.json").write_text(json.dumps(record, indent=2))
    (out / "export.md").write_text(result.summary() + "\n")
    return result


def _card_extras(cfg: RunConfig) -> dict:
    extras: dict = {"name": cfg.name}
    run = cfg.run_dir()
    metrics = run / "eval" / "adapter" / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        extras["evaluation"] = {k: m.get(k) for k in ("split", "rows", "execution_accuracy", "valid_sql_rate", "exact_match")}
    extras["training"] = {"lora_r": cfg.train.lora.r, "lora_alpha": cfg.train.lora.alpha,
                          "learning_rate": cfg.train.learning_rate, "batch_size": cfg.train.batch_size}
    extras["data"] = {"sources": [s.path for s in cfg.data.sources], "max_seq_len": cfg.data.max_seq_len}
    return extras
