"""spanflow packet side: capture sources, decoding, metering and the CLI."""

from probe.errors import ConfigError, ExportError, InputError, SpanflowError

__all__ = ["ConfigError", "ExportError", "InputError", "SpanflowError"]
