"""spanflow as a library: ``convert`` and ``stream`` captures into flow records.

See ``spanflow.api`` and the README's "Analysis" section.
"""

from core.errors import ConfigError, InputError, SpanflowError
from spanflow.api import Flows, convert, stream

__all__ = ["ConfigError", "Flows", "InputError", "SpanflowError", "convert", "stream"]
