"""Running ``spanflow convert`` in-process for CLI tests, and reading its stderr."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from probe.cli.converting import COMPILE_NOTE
from probe.cli.main import app


def convert(*args: str | Path) -> Result:
    """Invoke ``spanflow convert``; no run may end in an unexpected exception or print a traceback."""
    result = CliRunner().invoke(app, ["convert", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result


def stderr_lines(result: Result) -> list[str]:
    """stderr without the note printed when the kernels take long to compile on first use."""
    note = f"spanflow: {COMPILE_NOTE}"
    return [line for line in result.stderr.splitlines() if line != note]
