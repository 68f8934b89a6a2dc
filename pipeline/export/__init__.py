"""Export stage: merge (merge.py), GGUF (gguf_file.py), llm-compressor formats (quantize.py), hub push
(hub.py) and the stage (stage.py: `run(cfg)`)."""
