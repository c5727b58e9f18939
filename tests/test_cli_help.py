"""`--help` of every command reads as a person writes it, and README command lines use real options."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from probe.cli.main import app

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = ("convert", "capture", "collect", "bench-sampling")
TYPE_NAMES = ("<str>", "<int>", "<float>", "<path>", "<bool>", "list[")
OPTION = re.compile(r"(?:^|(?<=[\s\[|(]))(--?[A-Za-z][\w-]*)")


def options_of(command: str) -> set[str]:
    """Every spelling the command accepts: long and short names, --no-X forms, --help."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    params = group.commands[command].params
    return {"--help"} | {name for p in params for name in [*p.opts, *p.secondary_opts]}


def readme_command_lines(text: str) -> list[str]:
    """`spanflow ...` lines of code blocks (indented or fenced), continuation lines joined on."""
    lines: list[str] = []
    fenced = False
    base: int | None = None  # indentation of the command line being continued
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced, base = not fenced, None
            continue
        indent = len(line) - len(line.lstrip())
        in_block = fenced or indent >= 4
        if in_block and line.lstrip().startswith("spanflow "):
            lines.append(line.strip())
            base = indent
        elif in_block and base is not None and indent > base and line.strip():
            lines[-1] += " " + line.strip()
        else:
            base = None
    return lines


def unknown_options(text: str) -> list[tuple[str, str]]:
    """(command, option) for each option a README command line names that its command lacks."""
    unknown = []
    for line in readme_command_lines(text):
        command = line.split()[1]
        accepted = options_of(command)
        unknown += [(command, name) for name in OPTION.findall(line) if name not in accepted]
    return unknown


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_type_names(command: str) -> None:
    """--help names values FILE, HOST:PORT, N, SECONDS..., never <str>, <int>, list[str]."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    for name in TYPE_NAMES:
        assert name not in result.output
    assert re.search(r"<[^<>\s]+>", result.output) is None, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_value_option_has_a_metavar(command: str) -> None:
    """Each option that takes a value, and each argument, declares the metavar shown for it."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    for param in group.commands[command].params:
        if not getattr(param, "is_flag", False):
            assert param.metavar, param.name


def test_readme_command_lines_cover_every_command() -> None:
    """The README shows a usage line for each of the four commands."""
    commands = {line.split()[1] for line in readme_command_lines(README.read_text())}
    assert commands >= set(COMMANDS)


def test_readme_command_lines_use_only_real_options() -> None:
    """Every option on a README `spanflow ...` code line is one its command accepts."""
    assert unknown_options(README.read_text()) == []


def test_a_nonexistent_option_is_caught() -> None:
    """The README check finds an option the command lacks, on a continuation line too."""
    text = (
        "Usage:\n\n"
        "    spanflow convert FILE... [-c HOST:PORT] [-f 5|9|ipfix]\n"
        "                     [--max-flow 10] [--no-key-vlan]\n\n"
        "```\nspanflow collect --listen 127.0.0.1:2055 --scale -x\n```\n"
        "Prose: spanflow convert --not-checked outside code blocks.\n"
    )
    assert unknown_options(text) == [
        ("convert", "-f"),
        ("convert", "--max-flow"),
        ("collect", "-x"),
    ]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_loads_no_engine(command: str) -> None:
    """`spanflow [COMMAND] --help` imports neither numpy nor numba (they cost 0.2 s and 80 MB)."""
    code = (
        "import sys\n"
        "from probe.cli.main import app\n"
        "try:\n"
        f"    app([*{[command] if command else []!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted({'numpy', 'numba', 'pyarrow'} & set(sys.modules))\n"
        "print('loaded:' + ','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    assert "Usage" in result.stdout
    assert result.stdout.splitlines()[-1] == "loaded:"
