"""Flow cache settings, validated once at the boundary."""

from __future__ import annotations

from dataclasses import dataclass

from core.attributes import ATTRIBUTE_WORDS
from core.errors import ConfigError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Router cache rules (docs/design.md, Flow rules).

    ``inactive_timeout_s``: a record ends when a packet comes more than this
    after its last one (rule 2), or when the clock passes last + this.
    ``active_timeout_s``: a record ends when a packet comes more than this
    after its first one (rule 3). ``max_flows``: open records at most.
    ``key_vlan``: the outer VLAN id is part of the flow key.
    ``inner_tunnels``: keys and counts come from the innermost IP header of
    the tunnels the decoder opens (``--tunnels inner``), not the outermost.
    ``attributes``: records carry their first packet's ``core.attributes``
    words (MACs, inner VLAN, MPLS labels, tunnel endpoints: ``--fields``).
    ``key_mac``: the source and destination MACs are part of the flow key
    (they live in the attribute words, so it turns ``attributes`` on).
    """

    inactive_timeout_s: float = 15.0
    active_timeout_s: float = 1800.0
    max_flows: int = 65536
    key_vlan: bool = False
    inner_tunnels: bool = False
    attributes: bool = False
    key_mac: bool = False

    def __post_init__(self) -> None:
        if self.key_mac and not self.attributes:
            object.__setattr__(self, "attributes", True)
        if not self.inactive_timeout_s >= 0:
            raise ConfigError(f"inactive timeout must be >= 0 s, got {self.inactive_timeout_s}")
        if not self.active_timeout_s >= 0:
            raise ConfigError(f"active timeout must be >= 0 s, got {self.active_timeout_s}")
        if not 1 <= self.max_flows <= 1 << 26:
            raise ConfigError(f"max flows must be between 1 and {1 << 26}, got {self.max_flows}")

    @property
    def attribute_width(self) -> int:
        """Words of ``attrs`` in this cache's packet and record tables."""
        return ATTRIBUTE_WORDS if self.attributes else 0

    @property
    def inactive_ns(self) -> int:
        return round(self.inactive_timeout_s * NS_PER_S)

    @property
    def active_ns(self) -> int:
        return round(self.active_timeout_s * NS_PER_S)
