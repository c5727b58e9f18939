"""spanflow packet side: capture sources, decoding, metering and the CLI."""

from core.errors import ConfigError, ExportError, InputError, SpanflowError

__all__ = ["ConfigError", "ExportError", "InputError", "SpanflowError"]
