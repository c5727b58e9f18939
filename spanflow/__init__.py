"""spanflow as a library: ``convert`` and ``stream`` captures into flow records, ``capture`` live.

See ``spanflow.api`` and the README's "Analysis" section.
"""

from core.errors import ConfigError, InputError, SpanflowError
from spanflow.api import Flows, SamplingReport, bench_sampling, convert, stream
from spanflow.live import LiveFlows, capture

__all__ = [
    "ConfigError", "Flows", "InputError", "LiveFlows", "SamplingReport", "SpanflowError",
    "bench_sampling", "capture", "convert", "stream",
]  # fmt: skip
