"""sqlgenie's error hierarchy: one base error, caught at the CLI and UI boundary and shown as one line.

Every error a user can cause (bad config, bad data file, missing model) is a `SqlgenieError` whose
message names what was wrong and how to fix it. Anything else is a bug and keeps its traceback. Each
boundary has its own subclass, named for it: ConfigError, DataError, AssetError here; RunError (run
registry), JobError (job store), DeploymentError (serving launcher), EndpointError (client), AskError
(text-to-SQL), ExportError ... in their modules.

    from core.errors import SqlgenieError, run_command
"""
from __future__ import annotations


class SqlgenieError(Exception):
    """Base of every user-facing error; `str(err)` is the one line the user sees."""


class ConfigError(SqlgenieError):
    """A config (YAML file, override or field value) is invalid; lists every problem at once."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} has {len(self.problems)} problem(s):\n{lines}")


class DataError(SqlgenieError):
    """A data file cannot be read or does not have the expected layout."""


class AssetError(SqlgenieError):
    """An embedded asset (model, tokenizer) is missing or could not be built."""


def run_command(fn, *args) -> int:
    """Run a CLI subcommand: exit code 0 (or the int it returns), 2 with the user's error as one line, 130 (143
    for SIGTERM) with one line when interrupted, 141 quietly when its output pipe was closed (bugs keep their
    traceback)."""
    import sys

    try:
        code = fn(*args)
        sys.stdout.flush()              # a closed pipe shows here, not as a traceback at exit
    except BrokenPipeError:             # `sqlgenie jobs list | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141                      # what a shell reports for SIGPIPE
    except SqlgenieError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:      # Ctrl-C, or SIGTERM where a command turns it into one (serve up)
        print(f"interrupted{f': {e}' if str(e) else ''}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    return code if isinstance(code, int) else 0
