"""Fine-tuning on CPU with a tiny random Llama: loss falls (bf16 LoRA and 4-bit QLoRA), masking is
completion-only token by token, packing does not leak across examples, and a killed run resumes to
the same losses as an uninterrupted one."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from core.errors import ConfigError, DataError
from core.settings import REPO_ROOT
from pipeline import config, runs
from pipeline.train import stage as train
from pipeline.train.plan import detect_device
from tests.conftest import gretel_row, tiny_train_overrides, train_cli, write_gretel


@pytest.fixture
def data_file(tmp_path):
    return write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(64)])


def _losses(out_dir):
    return {r["step"]: r["loss"] for r in map(json.loads, (out_dir / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


@pytest.mark.parametrize("precision", ["bf16", "fp32", "4bit"])
def test_loss_falls(home, tiny_llama_dir, data_file, precision):
    if precision == "bf16" and not detect_device().bf16:
        pytest.skip("this CPU has no bf16 units (AVX512-BF16/AMX): the plan refuses bf16 here, as it should")
    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, f"train.precision={precision}",
                                                 "train.max_steps=30", f"name=fall-{precision}"))
    res = train.run(cfg)
    losses = _losses(res.out_dir)
    assert len(losses) == 30
    first, last = losses[1], sum(list(losses.values())[-5:]) / 5
    assert last < 0.88 * first, losses
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
    assert json.loads((res.out_dir / "plan.json").read_text())["precision"] == precision
    rec = json.loads((res.out_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"} <= set(rec)


@pytest.mark.parametrize("steps, evals_at", [(4, [2, 4]), (5, [2, 4, 5])])
def test_the_eval_loss_is_computed_once_per_evaluated_step(home, tiny_llama_dir, data_file, steps, evals_at):
    """eval_steps dividing the run: its last step's eval is the final one (no second pass over the same rows);
    otherwise the end of the run gets its own."""
    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "train.precision=fp32",
                                                 "data.eval_fraction=0.1", f"train.max_steps={steps}",
                                                 "train.eval_steps=2", f"name=ev{steps}"))
    res = train.run(cfg)
    recs = [json.loads(line) for line in (res.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "eval_loss" in r] == evals_at
    assert res.eval_loss is not None


def test_labels_mask_everything_but_the_completion(home, tiny_llama_dir, data_file, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    from pipeline.data import prepare
    from pipeline.train.data import load_split

    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "name=mask"))
    out = prepare.run(cfg).out_dir
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "train.parquet").to_pylist()
    ds = load_split(out / "train.parquet")
    for row, ex in zip(rows, ds):
        ids, labels = ex["input_ids"], ex["labels"]
        assert len(ids) == len(labels)
        kept = [i for i, lab in enumerate(labels) if lab != -100]
        assert kept == list(range(row["prompt_length"], len(ids)))                   # one contiguous tail
        assert all(labels[i] == ids[i] for i in kept)
        assert tok.decode([ids[i] for i in kept]) == row["sql"] + "<|im_end|>\n"


def test_packed_examples_do_not_attend_to_each_other(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    a, b = torch.randint(5, 300, (1, 17)), torch.randint(5, 300, (1, 23))
    packed = torch.cat([a, b], dim=1)
    pos = torch.cat([torch.arange(17), torch.arange(23)]).unsqueeze(0)
    with torch.no_grad():
        # as in training: no KV cache (with one, transformers does not look for packed sequences)
        together = model(input_ids=packed, position_ids=pos, use_cache=False).logits
        alone_b = model(input_ids=b, use_cache=False).logits
        leaky = model(input_ids=packed, use_cache=False).logits  # what padding-free packing must not do
    assert torch.allclose(together[:, 17:], alone_b, atol=1e-4)
    assert not torch.allclose(leaky[:, 17:], alone_b, atol=1e-4)


def test_varlen_attention_matches_rows_trained_one_by_one(tiny_llama_dir):
    """Our packed attention ("sqlgenie_varlen", used when flash_attn is missing): three rows end to end give
    each row's own logits and the same LoRA-free gradients as the rows run separately."""
    from transformers import AutoModelForCausalLM

    from pipeline.train.kernels import varlen_attention as varlen

    name = varlen.register()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation=name)
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    model.config.use_cache = ref.config.use_cache = False
    rows = [torch.randint(5, 300, (1, n)) for n in (17, 5, 23)]
    packed = torch.cat(rows, dim=1)
    pos = torch.cat([torch.arange(r.shape[1]) for r in rows]).unsqueeze(0)
    together = model(input_ids=packed, position_ids=pos, labels=packed).logits
    alone = torch.cat([ref(input_ids=r).logits for r in rows], dim=1)
    assert torch.allclose(together, alone, atol=1e-4)
    # the backward pass too: d(sum of logits)/d(q_proj weight) of the packed batch == sum over the rows
    together.sum().backward()
    alone.sum().backward()
    g_packed = model.model.layers[0].self_attn.q_proj.weight.grad
    g_rows = ref.model.layers[0].self_attn.q_proj.weight.grad
    assert torch.allclose(g_packed, g_rows, atol=1e-3, rtol=1e-3)
    # and it is not plain causal attention over the flattened batch
    leaky = ref(input_ids=packed).logits
    assert not torch.allclose(leaky[:, 22:], together[:, 22:], atol=1e-4)
    # the row boundaries are derived once per tensor and never reused for another batch
    cu, longest = varlen.segments(pos)
    assert cu.tolist() == [0, 17, 22, 45] and longest == 23
    assert varlen.segments(torch.arange(7).unsqueeze(0))[0].tolist() == [0, 7]


def test_the_completion_loss_equals_the_full_logits_loss(tiny_llama_dir):
    """pipeline/train/completion_loss.py: logits only at the scored positions give the loss and the gradients
    of the model's own full-logits loss, on a padded batch whose rows are scored at different positions."""
    from transformers import AutoModelForCausalLM

    from pipeline.train.completion_loss import completion_loss, scored_positions

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    ids = torch.randint(5, 300, (2, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    labels = ids.clone()
    labels[0, :12] = -100            # row 0: prompt of 12, completion to the end
    labels[1, :6] = -100             # row 1: prompt of 6, completion 6..14, then padding
    labels[1, 15:] = -100
    n = int((labels[:, 1:] != -100).sum()) + 3      # as if the accumulated batch held 3 more scored tokens
    full = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=n).loss
    full.backward()
    g_full = model.model.layers[0].mlp.up_proj.weight.grad.clone()
    model.zero_grad()
    keep = scored_positions(labels)
    assert keep.tolist() == list(range(5, 19))       # row 1's from 5, row 0's to 18 (the last predicts 19)
    out = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep)
    assert out.logits.shape[1] == len(keep)
    ours = completion_loss(out, labels, num_items_in_batch=n, keep=keep)
    ours.backward()
    assert torch.allclose(ours, full, atol=1e-5)
    assert torch.allclose(model.model.layers[0].mlp.up_proj.weight.grad, g_full, atol=1e-5)
    nothing = torch.full_like(labels, -100)
    assert scored_positions(nothing).tolist() == [0]


def test_varlen_attention_keeps_gemma3_local_layers_inside_their_window():
    """Gemma 3's local layers see 512 keys back; packed through our attention, a row longer than the window
    gets the same logits as the row alone through transformers' own masks (tiny random Gemma 3, window 8)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from pipeline.train.kernels import varlen_attention as varlen

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=8,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256)
    ref = Gemma3ForCausalLM(cfg).eval()
    cfg_v = Gemma3TextConfig.from_dict(cfg.to_dict())
    cfg_v._attn_implementation = varlen.register()
    model = Gemma3ForCausalLM(cfg_v).eval()
    model.load_state_dict(ref.state_dict())
    rows = [torch.randint(5, 300, (1, n)) for n in (21, 5, 30)]
    packed = torch.cat(rows, dim=1)
    pos = torch.cat([torch.arange(r.shape[1]) for r in rows]).unsqueeze(0)
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=pos, use_cache=False).logits
        alone = torch.cat([ref(input_ids=r, use_cache=False).logits for r in rows], dim=1)
        ref.config.sliding_window = 1000   # the window ignored: differs past 8 tokens, so the test can tell
        unwindowed = torch.cat([ref(input_ids=r, use_cache=False).logits for r in rows], dim=1)
    assert torch.allclose(together, alone, atol=1e-4)
    assert not torch.allclose(together[:, 9:21], unwindowed[:, 9:21], atol=1e-4)


def test_killed_run_resumes_to_the_same_losses(home, tiny_llama_dir, data_file):
    """SIGKILL after checkpoint-6 of 8, then train.resume=latest: the same run folder continues, steps 7-8 give
    the uninterrupted run's losses, metrics.jsonl holds each step once (the killed steps after the checkpoint
    are dropped), and result.json's train_loss is the mean over all 8 steps, not just the resumed ones."""
    common = tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=8", "train.save_steps=3",
                                  "train.precision=fp32")
    train_cli(home, common + ["name=straight"])
    ref_losses = _losses(runs.list_runs("straight")[0].dir)

    train_cli(home, common + ["name=killed"], kill_when="runs/killed/*/checkpoint-6/COMPLETE")
    (run,) = runs.list_runs("killed")
    assert run.status == "interrupted"
    half = run.dir / "checkpoint-7"          # what a kill in the middle of a save leaves behind
    half.mkdir(exist_ok=True)
    res = train.run(config.load(None, common + ["name=killed", "train.resume=latest"]))
    assert res.out_dir == run.dir and res.run_id == run.id          # the same run, not a new folder
    resumed = _losses(res.out_dir)
    for step in (7, 8):
        assert resumed[step] == pytest.approx(ref_losses[step], rel=1e-4, abs=1e-5), (step, resumed, ref_losses)
    steps = [r["step"] for r in map(json.loads, (run.dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == list(range(1, 9)), steps
    result = json.loads(run.result_path.read_text())
    assert result["train_loss"] == pytest.approx(sum(resumed.values()) / 8, rel=1e-6)
    assert not half.exists() and list(run.dir.glob("checkpoint-7.incomplete-*"))
    assert runs.open_run(run.dir).status == "succeeded"


def test_bad_inputs_fail_before_any_model_load(home, tiny_llama_dir, data_file, tmp_path, tiny_tokenizer_dir):
    with pytest.raises(ConfigError, match="is not a folder with config.json"):
        train.run(config.load(None, tiny_train_overrides(tmp_path / "missing", data_file)))
    empty = write_gretel(tmp_path / "bad.parquet", [gretel_row(i, sql="") for i in range(4)])
    with pytest.raises(DataError, match="no usable training rows"):
        train.run(config.load(None, tiny_train_overrides(tiny_llama_dir, empty, "name=empty")))
    with pytest.raises(runs.RunError, match="no run"):
        train.run(config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, f"train.resume={tmp_path}")))
    # a tokenizer without a chat template
    import shutil

    no_tpl = tmp_path / "no-template"
    shutil.copytree(tiny_llama_dir, no_tpl)
    for f in ("chat_template.jinja",):
        (no_tpl / f).unlink(missing_ok=True)
    cfg_path = no_tpl / "tokenizer_config.json"
    tc = json.loads(cfg_path.read_text())
    tc.pop("chat_template", None)
    cfg_path.write_text(json.dumps(tc))
    with pytest.raises(ConfigError, match="no chat template"):
        train.run(config.load(None, tiny_train_overrides(no_tpl, data_file, "name=notpl")))


def test_ddp_under_torchrun_trains_with_two_processes(home, tiny_llama_dir, data_file):
    """The same command under torchrun: two processes (gloo on CPU) split each optimizer step's rows,
    the main process alone writes plan, metrics (one line per step) and the adapter."""
    args = tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=4", "train.precision=fp32", "name=ddp")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SQLGENIE_HOME=str(home), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
                           "-m", "pipeline", "train", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = runs.list_runs("ddp")[0].dir
    plan = json.loads((out / "plan.json").read_text())
    assert plan["world_size"] == 2 and plan["micro_batch"] * plan["grad_accum"] * 2 == 4
    log = proc.stdout + proc.stderr
    assert "process 1 of 2" in log
    assert log.count("preparing it first") == 1   # the main process prepares, the other waits and reads
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    assert json.loads((out / "result.json").read_text())["processes"] == 2
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not list(out.glob(".adapter*"))


def test_the_train_command_launches_ddp_itself_into_one_run(home, tiny_llama_dir, data_file):
    """What `sqlgenie train` does on a machine with several visible GPUs: it makes the run, then runs the same
    command under torchrun (here 2 gloo processes on CPU) with the run handed down: one run folder, the main
    process writes plan, metrics and adapter, the other process waits."""
    import dataclasses

    from pipeline.train import plan as planning

    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=3", "train.precision=fp32",
                                                 "name=autoddp"))
    plan = planning.make_plan(cfg, tiny_llama_dir)
    plan = dataclasses.replace(plan, device=dataclasses.replace(plan.device, count=2))
    res = train._launch_ddp(cfg, plan, time.time())
    (run,) = runs.list_runs("autoddp")
    assert res.out_dir == run.dir and res.steps == 3 and run.has_adapter()
    assert json.loads(run.result_path.read_text())["processes"] == 2
    assert json.loads((run.dir / "plan.json").read_text())["world_size"] == 2


def test_full_fine_tuning_trains_every_weight_and_is_evaluated_as_a_whole_model(home, tiny_llama_dir, data_file):
    """train.method full: no adapter; every weight moves; model/ is a whole model with the card and tokenizer;
    the run is named like an adapter run to evaluate, and refused (naming model/) where an adapter is needed."""
    from safetensors.torch import load_file

    from pipeline.evaluate import stage as evaluate

    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "train.method=full", "train.precision=fp32",
                                                 "train.learning_rate=1e-3", "train.max_steps=12", "name=full"))
    res = train.run(cfg)
    losses = _losses(res.out_dir)
    assert sum(list(losses.values())[-3:]) / 3 < 0.9 * losses[1], losses
    run = runs.get(res.run_id)
    assert res.adapter_dir == run.model_dir and run.has_model() and not run.has_adapter()
    assert json.loads((run.model_dir / "sqlgenie.json").read_text())["kind"] == "full-model"
    assert json.loads((res.out_dir / "plan.json").read_text())["method"] == "full"
    before, after = load_file(str(tiny_llama_dir / "model.safetensors")), load_file(str(run.model_dir / "model.safetensors"))
    moved = [k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))]
    assert len(moved) == len(before), sorted(set(before) - set(moved))   # embeddings and norms too, not only projections
    from pipeline.export import stage as export

    exp_cfg = config.load(None, [*tiny_train_overrides(tiny_llama_dir, data_file, "name=full"),
                                 f"export.adapter={res.run_id}", "export.formats=[merged]"])
    merged = export.run(exp_cfg, progress=lambda *_: None).items[0]
    assert merged["verify"]["top1_agreement"] == 1.0                       # written in bf16 from the model, checked
    assert json.loads((run.export_dir / "merged" / "sqlgenie.json").read_text())["merged_from"] == str(run.model_dir)
    # Try it: the fine-tune is served alone (no base + adapter), and compared with its base where one is served
    import yaml

    from app import actions
    from pipeline.jobs import JobStore
    from serving import deployments as D

    store = JobStore()
    job, dep, model = actions.try_run(store, run)
    serve = yaml.safe_load(store.get(job).config)
    assert serve["model"] == str(run.model_dir) and serve["lora_adapters"] == [] and model == dep
    assert actions.compare_with(run, dep, model) is None                  # nothing serves the base yet
    D.state_dir("sqlgenie").mkdir(parents=True, exist_ok=True)
    D.save({"name": "sqlgenie", "phase": "ready", "created": time.time(), "router": {"url": "http://127.0.0.1:9"},
            "replicas": [], "config": {"model": str(tiny_llama_dir)}, "workers": [],
            "models": {"sqlgenie": {"kind": "base", "tokenizer": "/t", "contract": {}}}})
    assert actions.compare_with(run, dep, model) == "sqlgenie @ sqlgenie"
    assert "b=sqlgenie+%40+sqlgenie" in actions.playground_url(dep, dep, "sqlgenie @ sqlgenie")
    result = evaluate.run(cfg, adapter=res.run_id, split=str(data_file), limit=2, backend="transformers")
    assert result.metrics["adapter"] == str(run.model_dir) and result.metrics["run"] == res.run_id
    assert result.out_dir.parent == run.dir / "eval" and result.metrics["label"] == "model"


def test_full_fine_tuning_refuses_a_quantized_base_and_unsloth(home, tiny_llama_dir, data_file):
    for extra, says in [("train.precision=4bit", "train.precision 4bit keeps a frozen quantized base"),
                        ("train.backend=unsloth", "train.method full runs on the trl backend")]:
        cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file, "train.method=full", extra))
        with pytest.raises(ConfigError, match=says):
            train.run(cfg)


def test_a_train_command_reads_and_checks_its_config_once_and_plans_once(home, tiny_llama_dir, data_file, tmp_path,
                                                                         monkeypatch):
    """`sqlgenie train -c FILE` in one process: the YAML is read once, the config's rules checked once (the
    command's load; the stage and prepare trust it) and the plan made once. A config changed after its check is
    checked again."""
    import yaml

    from core import settings
    from pipeline import cli
    from pipeline.config import RunConfig
    from pipeline.train import plan as planning

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "once"}))
    counts = {"read": 0, "problems": 0, "plan": 0}

    def counted(name, fn):
        def wrapper(*a, **kw):
            counts[name] += 1
            return fn(*a, **kw)
        return wrapper
    monkeypatch.setattr(config, "read_config", counted("read", settings.read_config))
    monkeypatch.setattr(RunConfig, "problems", counted("problems", RunConfig.problems))
    monkeypatch.setattr(planning, "make_plan", counted("plan", planning.make_plan))
    assert cli.main(["train", "-c", str(path), *tiny_train_overrides(tiny_llama_dir, data_file, "train.max_steps=2")]) == 0
    assert counts == {"read": 1, "problems": 1, "plan": 1}, counts
    cfg = config.load(None, tiny_train_overrides(tiny_llama_dir, data_file))
    cfg.validate(need_model=False)
    assert counts["problems"] == 2                       # load checked it; the same level again: no second check
    cfg.validate(need_model=True)
    assert counts["problems"] == 3                       # a stricter level is checked
    cfg.data.sources[0].path = str(tmp_path / "gone.parquet")
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.validate(need_model=True)                    # changed since: checked again
