"""The benchmark lab, outside the product: each module re-measures figures of docs/benchmarks.md and prints a
table last. They use the product's public names only (no private names, no patching, no sys.path edits:
tests/unit/test_layers.py checks), so a bench measures what a user runs.

    sqlgenie bench                       # the list below, from each module's first line
    sqlgenie bench NAME [ARGS...]        # = `python -m bench.NAME ARGS` from the repository root
    bash bench/device.sh ...             # the one driver for the GPU machine (what was carried, then a command)

training: train_gpu (8B shapes vs Unsloth/HF anchors), train_cpu (the CPU recipe vs plain TRL); data: prepare_100k;
serving: serving_sweep, router_overhead, latency_b1 (+ score_answers), decoding_latency, draft_acceptance,
grammar_cost, client_work, cpu_scaling, device_gpu (vLLM load, a serve job, export on a GPU); evaluation:
error_taxonomy, quality_table (docs/quality.json), recipe_sweep (recipe variants trained at once, scored on the OOD
yardstick); console: console_render.
"""
