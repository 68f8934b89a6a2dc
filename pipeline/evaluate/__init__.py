"""Evaluation stage: generation (generate.py), execution scoring (scoring.py, spider.py), the stage
(stage.py: `run(cfg, ...)`) and reports (report.py)."""
