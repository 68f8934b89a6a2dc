"""Damaged run records and full disks (pipeline/runs.py, pipeline/train/stage.py, pipeline/cli.py): each is
one line naming the file and what to do, and nothing else is lost. The full disks are real: a small tmpfs
filled to the last byte (root only; the tests say so and skip elsewhere)."""
from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from pipeline import cli, config, runs
from pipeline.train import checkpoints
from pipeline.train import stage as train
from tests.conftest import gretel_row, tiny_train_overrides, write_gretel


@pytest.fixture
def data_file(tmp_path):
    return write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(32)])


def _args(tiny_llama_dir, data_file, *extra):
    return tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=3", "train.save_steps=1",
                                "train.precision=fp32", "name=rec", *extra)


def _cfg(tiny_llama_dir, data_file, *extra):
    return config.load(None, _args(tiny_llama_dir, data_file, *extra))


def _error_lines(capsys) -> list[str]:
    """The command's error lines, after checking that no traceback was printed (libraries write on stderr too,
    and a progress bar left open by the error ends without a newline: the error line may follow it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return re.findall(r"error: .*", err)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs of its own, so that a test can fill a disk for real (ENOSPC, not a fake error)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", f"sqlgenie-test-{uuid.uuid4().hex[:6]}",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()[:80]}): a real full disk needs root")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk, leave: int = 0) -> None:
    """Write until the filesystem says ENOSPC, down to the last byte it will take; then give back `leave` bytes."""
    with open(disk / "filler", "ab", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == 28, e
        f.truncate(f.tell() - leave)


def test_unreadable_lines_of_the_index_and_of_metrics_are_skipped_and_named(home, tiny_llama_dir, data_file,
                                                                             tmp_path, capsys):
    here = runs.new_run(_cfg(tiny_llama_dir, data_file))
    elsewhere = runs.new_run(_cfg(tiny_llama_dir, data_file, f"train.output_dir={tmp_path / 'mine'}"))
    index = home / "runs" / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(lines[0] + b'{"id": "rec/x", "dir": "/r\xff\xfe"}\n' + lines[1])   # a bad byte on line 2
    good = [json.dumps({"step": s, "loss": 2.0 - s / 10}).encode() + b"\n" for s in (1, 2, 3)]
    elsewhere.metrics_path.write_bytes(good[0] + b'{"step": 2, "loss": 1.\xe9}\n' + good[2])   # line 2

    assert cli.main(["runs"]) == 0
    out, err = capsys.readouterr()
    assert here.id in out and elsewhere.id in out                    # both listed, the one outside via the index
    assert f"{index} line 2 is not UTF-8 text: skipped" in err
    assert f"metrics unreadable at line 2 of {elsewhere.metrics_path} (not UTF-8 text): skipped" in err
    assert "Traceback" not in out + err
    # what the pages that list runs call
    (run,) = [r for r in runs.list_runs("rec") if r.id == elsewhere.id]
    assert [m["step"] for m in runs.read_metrics(run)] == [1, 3]
    assert runs.summarize(run)["steps"] == 3 and run.problems
    # a resume truncating the metrics keeps the line it cannot read as it is (nothing is lost)
    assert runs.truncate_metrics(run, 1) == 1
    assert run.metrics_path.read_bytes() == good[0] + b'{"step": 2, "loss": 1.\xe9}\n'


def test_a_truncated_run_json_is_listed_as_damaged_and_never_taken_by_latest(home, tiny_llama_dir, data_file,
                                                                             capsys):
    cfg = _cfg(tiny_llama_dir, data_file)
    older = runs.new_run(cfg)
    newer = runs.new_run(cfg)
    f = newer.dir / "run.json"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])

    assert cli.main(["runs", "rec"]) == 0
    out = capsys.readouterr().out
    assert older.id in out
    row = next(line for line in out.splitlines() if line.startswith(newer.id))
    assert " damaged " in row
    assert f"{f} is truncated or unreadable" in out
    assert runs.get(newer.id).status == "damaged"
    with pytest.raises(runs.RunError, match=rf"the newest run of 'rec', {newer.id}, is damaged \({f} is truncated"):
        train.run(_cfg(tiny_llama_dir, data_file, "train.resume=latest"))
    with pytest.raises(runs.RunError, match=rf"{newer.id}, is damaged"):
        runs.resolve_adapter("latest", cfg)
    with pytest.raises(runs.RunError, match="damaged"):
        train.run(_cfg(tiny_llama_dir, data_file, f"train.resume={newer.id}"))


def test_a_truncated_adapter_is_one_line_at_evaluation_and_export(home, tiny_llama_dir, data_file, capsys):
    done = train.run(_cfg(tiny_llama_dir, data_file))
    weights = done.adapter_dir / "adapter_model.safetensors"
    whole = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: whole // 2])
    capsys.readouterr()
    args = _args(tiny_llama_dir, data_file)
    for ref in (done.run_id, "latest", str(done.adapter_dir)):
        assert cli.main(["evaluate", *args, "--adapter", ref, "--limit", "2", "--backend", "transformers"]) == 2
        (line,) = _error_lines(capsys)
        assert line == (f"error: {weights} is truncated ({whole // 2} of {whole} bytes): re-train it (sqlgenie train "
                        "-c ...), or pick another run's adapter (`sqlgenie runs` lists them)")
    assert cli.main(["export", *args, f"export.adapter={done.run_id}", "export.formats=[merged]"]) == 2
    (line,) = _error_lines(capsys)
    assert line.startswith(f"error: {weights} is truncated")
    card = done.adapter_dir / "sqlgenie.json"
    card.write_text(card.read_text()[:40])
    assert cli.main(["evaluate", *args, "--adapter", done.run_id, "--limit", "2"]) == 2
    assert _error_lines(capsys) == [f"error: {card} is truncated or unreadable: re-train it (sqlgenie train -c ...), "
                                    "or pick another run's adapter (`sqlgenie runs` lists them)"]


def test_a_full_disk_while_training_is_one_line_the_run_failed_and_resumes(home, tiny_llama_dir, data_file,
                                                                          small_disk, monkeypatch, capsys):
    """The disk fills up once checkpoint-2 is complete (the test writes a file until ENOSPC: a real full disk);
    the save of checkpoint-3 then fails. One line, the run reads `failed` for lack of space (not `interrupted`),
    checkpoints 1 and 2 stay, and once space is freed train.resume=latest continues it to the end."""
    real_mark = checkpoints.mark_complete

    def mark_then_fill(folder):
        real_mark(folder)
        if folder.name == "checkpoint-2":
            fill(small_disk)

    monkeypatch.setattr(checkpoints, "mark_complete", mark_then_fill)
    args = _args(tiny_llama_dir, data_file, "train.max_steps=4", f"train.output_dir={small_disk / 'runs'}")
    assert cli.main(["train", *args]) == 2
    (run,) = runs.list_runs("rec")
    (line,) = _error_lines(capsys)
    assert line.startswith(f"error: no space left on device while writing {run.dir / 'checkpoint-3'}")
    assert line.endswith(f": free space and resume with train.resume={run.id} (its complete checkpoints are kept)")
    assert run.status == "failed"
    assert run.status_line() == f"failed: no space left on device while writing {run.dir / 'checkpoint-3'}"
    assert [p.name for p in checkpoints.complete(run.dir)] == ["checkpoint-1", "checkpoint-2"]

    monkeypatch.setattr(checkpoints, "mark_complete", real_mark)
    (small_disk / "filler").unlink()
    res = train.run(config.load(None, args + ["train.resume=latest", "train.save_steps=2"]))  # a watching knob
    assert res.run_id == run.id and res.steps == 4
    out = capsys.readouterr().out
    assert (f"train.resume=latest: run {run.id} is the newest run of 'rec' (failed: no space left on device while "
            f"writing {run.dir / 'checkpoint-3'}): continuing it from checkpoint-2") in out
    steps = [r["step"] for r in runs.read_metrics(run) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    assert runs.reread(run).status == "succeeded" and run.has_adapter()
    assert list(run.dir.glob("checkpoint-3.incomplete-*"))          # the cut save, set aside, not deleted


def test_a_full_disk_while_preparing_is_one_line(home, tiny_llama_dir, data_file, small_disk, capsys):
    """Two pages left: the lock file takes one, the Parquet writer runs out (pyarrow's OSError, errno 28)."""
    fill(small_disk, leave=8192)
    out_dir = small_disk / "prepared"
    args = _args(tiny_llama_dir, data_file, f"data.output_dir={out_dir}")
    assert cli.main(["prepare", *args]) == 2
    assert _error_lines(capsys) == [f"error: no space left on device while writing {out_dir}: free space and run "
                                    "`sqlgenie prepare` again (nothing was published: prepared data already there "
                                    "is unchanged)"]
    assert not out_dir.exists()
    (small_disk / "filler").unlink()
    assert cli.main(["prepare", *args]) == 0 and (out_dir / "train.parquet").is_file()
