"""spanflow as a library: ``convert`` and ``stream`` captures into flow records.

See ``spanflow.api`` and the README's "Analysis" section.
"""

from core.errors import ConfigError, InputError, SpanflowError
from spanflow.api import Flows, SamplingReport, bench_sampling, convert, stream

__all__ = [
    "ConfigError", "Flows", "InputError", "SamplingReport", "SpanflowError", "bench_sampling",
    "convert", "stream",
]  # fmt: skip
