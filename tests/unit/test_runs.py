"""The run registry's promises (pipeline/runs.py), each with a real (tiny) training run on CPU: a rerun is a new
run that leaves the old one alone; one writer per run; resume refuses another run's checkpoint and never
continues a finished run; `latest` is the newest run, never an older one in its place; `latest` honours
train.output_dir. (Metrics after a resume: tests/unit/test_train.py::test_killed_run_resumes...; damaged
records and full disks: tests/unit/test_runs_records.py)"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pipeline import config, runs
from pipeline.train import stage as train
from tests.conftest import gretel_row, tiny_train_overrides, write_gretel


@pytest.fixture
def data_file(tmp_path):
    return write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(32)])


def _cfg(tiny_llama_dir, data_file, *extra):
    return config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=3", "train.save_steps=1",
                                                  "train.precision=fp32", "name=reg", *extra))


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rerun_is_a_new_run_and_leaves_the_old_one_alone(home, tiny_llama_dir, data_file):
    first = train.run(_cfg(tiny_llama_dir, data_file))
    before = _snapshot(first.out_dir)
    assert len([p for p in first.out_dir.glob("checkpoint-*")]) == 3
    second = train.run(_cfg(tiny_llama_dir, data_file))
    assert second.out_dir != first.out_dir and second.run_id != first.run_id
    assert _snapshot(first.out_dir) == before          # metrics, checkpoints, adapter: byte for byte
    assert [r.id for r in runs.list_runs("reg")] == [second.run_id, first.run_id]


def test_a_second_writer_of_a_run_is_refused_naming_the_first(home, tiny_llama_dir, data_file):
    cfg = _cfg(tiny_llama_dir, data_file)
    run = runs.new_run(cfg)
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time\nfrom pipeline import runs\n"
                               f"l = runs.lock(runs.open_run({str(run.dir)!r})).acquire()\n"
                               "print('held', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runs.RunBusy, match=rf"run {run.id} is in use by another process \(pid {holder.pid}\)"):
            train.run(_cfg(tiny_llama_dir, data_file, f"train.resume={run.id}"))
    finally:
        holder.kill()
        holder.wait()
    train.run(_cfg(tiny_llama_dir, data_file, f"train.resume={run.id}"))   # the lock died with its holder


def test_resume_refuses_a_checkpoint_of_another_run(home, tiny_llama_dir, data_file):
    done = train.run(_cfg(tiny_llama_dir, data_file, "train.seed=1"))
    ckpt = done.out_dir / "checkpoint-2"
    for ref in (done.run_id, str(ckpt), "latest"):
        with pytest.raises(runs.RunError, match=r"train.seed: run has 1, this config 2") as e:
            train.run(_cfg(tiny_llama_dir, data_file, "train.seed=2", f"train.resume={ref}"))
        assert "Start a new run" in str(e.value)
    with pytest.raises(runs.RunError, match="train.learning_rate"):
        train.run(_cfg(tiny_llama_dir, data_file, "train.seed=1", "train.learning_rate=0.5", f"train.resume={ckpt}"))
    # the same config (watching knobs may differ) would continue it, but it finished: refused as such (the
    # same config continuing an unfinished run: test_runs_records.py::test_a_full_disk_while_training...)
    with pytest.raises(runs.RunError, match="has status succeeded: a finished run is never continued"):
        train.run(_cfg(tiny_llama_dir, data_file, "train.seed=1", "train.resume=latest", "train.logging_steps=2"))
    assert len(runs.list_runs("reg")) == 1


def test_resume_never_continues_a_finished_run_nor_skips_the_newest(home, tiny_llama_dir, data_file):
    """Whatever train.resume names, a succeeded run is refused and its folder (adapter, result, metrics,
    checkpoints) stays byte for byte; `latest` is the newest run: one without a complete checkpoint is refused
    by name, never passed over for an older one."""
    done = train.run(_cfg(tiny_llama_dir, data_file))
    before = _snapshot(done.out_dir)
    for ref in ("latest", done.run_id, str(done.out_dir), str(done.out_dir / "checkpoint-3")):
        with pytest.raises(runs.RunError, match=rf"{re.escape(done.run_id)},? has status succeeded: a finished run is "
                                                r"never continued") as e:
            train.run(_cfg(tiny_llama_dir, data_file, f"train.resume={ref}"))
        assert "start a new run (leave train.resume unset)" in str(e.value)
    assert _snapshot(done.out_dir) == before
    # a newer run that never reached a checkpoint (made, as a job's launcher makes it; its process then died)
    newer = runs.new_run(_cfg(tiny_llama_dir, data_file))
    with pytest.raises(runs.RunError, match=rf"the newest run of 'reg', {re.escape(newer.id)} \(created\), has no "
                                            "complete checkpoint, and an older run is not continued in its place"):
        train.run(_cfg(tiny_llama_dir, data_file, "train.resume=latest"))
    assert _snapshot(done.out_dir) == before
    assert [r.id for r in runs.list_runs("reg")] == [newer.id, done.run_id]


def test_latest_honours_train_output_dir(home, tiny_llama_dir, data_file, tmp_path):
    elsewhere = tmp_path / "my-runs"
    cfg = _cfg(tiny_llama_dir, data_file, f"train.output_dir={elsewhere}")
    res = train.run(cfg)
    assert res.out_dir.parent == elsewhere
    adapter, run = runs.resolve_adapter("latest", cfg)
    assert adapter == res.adapter_dir and run.id == res.run_id
    assert run.id in [r.id for r in runs.list_runs()]             # found through the index, outside <home>/runs
    with pytest.raises(runs.RunError, match="no trained run of 'reg'"):
        runs.resolve_adapter("latest", _cfg(tiny_llama_dir, data_file))     # the default root has none
    assert runs.resolve_adapter(res.run_id, cfg)[0] == res.adapter_dir
    assert runs.resolve_adapter(str(res.adapter_dir), cfg)[1].id == res.run_id
