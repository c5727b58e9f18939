"""The spanflow exception tree, caught once at the CLI.

    SpanflowError
     +-- InputError    a capture that cannot be read (or stops being readable)
     +-- ConfigError   an option or configuration value that makes no sense
     +-- ExportError   a sink that cannot be opened or written

Bad packets are never raised: the decoder counts them by reason.
"""


class SpanflowError(Exception):
    """Base of every error spanflow reports to the operator in one line."""


class InputError(SpanflowError):
    """A capture file is missing, not a capture, or damaged at a known offset."""


class ConfigError(SpanflowError):
    """An option value is invalid."""


class ExportError(SpanflowError):
    """A sink could not be opened or written."""
