"""``--config FILE.toml``: option defaults from a file; flags on the command line win."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer


def load_defaults(ctx: typer.Context, param: Any, path: Path | None) -> Path | None:
    """Eager option callback: the file's keys become the command's defaults.

    Keys are long option names with dashes or underscores (``max-flows`` or
    ``max_flows``); an unknown key or a malformed file is a usage error.
    """
    if path is None or ctx.resilient_parsing:
        return path
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{path}: {exc}") from exc
    # A key is a long option's name (``filter`` for --filter), dashes or underscores.
    known = {
        option[2:].replace("-", "_"): param.name
        for param in ctx.command.params
        for option in getattr(param, "opts", [])
        if option.startswith("--") and param.name
    }
    known.pop("config", None)
    defaults = {}
    for key, value in values.items():
        name = known.get(key.replace("-", "_"))
        if name is None:
            raise typer.BadParameter(f"{path}: unknown setting {key!r}")
        defaults[name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path
