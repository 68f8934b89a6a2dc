"""python -m pipeline ... : the stage commands (pipeline/cli.py)."""
import sys

from pipeline.cli import main

sys.exit(main())
