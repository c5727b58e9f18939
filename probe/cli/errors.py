"""How every command ends on an error: one line on stderr and a defined exit status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from core.errors import ConfigError, SpanflowError

EXIT_DAMAGED = 1  # bad input, a lost interface or collector: what was read is still out
EXIT_USAGE = 2  # a bad option or configuration, found before any work
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> typer.Exit:
    """Print ``spanflow: error: message``; the caller raises what this returns."""
    typer.echo(f"spanflow: error: {message}", err=True)
    return typer.Exit(code)


def note(message: str) -> None:
    typer.echo(f"spanflow: {message}", err=True)


@contextmanager
def errors_exit(*also: type[Exception]) -> Iterator[None]:
    """End the command in one line on a SpanflowError or one of ``also``.

    ConfigError exits with ``EXIT_USAGE``, every other one with ``EXIT_DAMAGED``.
    A closed stdout (``| head``) passes through to the entry point, which stops quietly.
    """
    damage: tuple[type[Exception], ...] = (SpanflowError, *also)
    try:
        yield
    except BrokenPipeError:
        raise
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    except damage as exc:
        raise fail(str(exc), EXIT_DAMAGED) from exc
