"""python -m serving ... : the serving commands (serving/cli.py)."""
import sys

from serving.cli import main

sys.exit(main())
