"""Load every compiled kernel before the work starts: the ahead-of-time module's variants
(aot/), or numba's from its cache, or compiling them (the first run without the module).

The first packets then meet ready code; rates measured after it are the
metering's own; a probe that drops root after opening its capture needs no
cache file it may no longer read.
"""

from __future__ import annotations

import numpy as np

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from cache.keys import key_ids
from core.packets import FrameBatch
from core.records import RecordTable
from exporter.flowfile import RowFormat
from probe.decode.decoder import decode
from probe.live.ring_kernel import walk_ring
from probe.sources import kernel as walk
from probe.sources.readers import MAX_PCAP_CAPLEN, MAX_PCAPNG_BLOCK, Scratch


def load_kernels(
    cache_config: CacheConfig, readers: bool = True, parallel: bool = False, ring: bool = False
) -> None:
    """Call each kernel once on a tiny input, with the argument types the real calls use.

    ``parallel`` also loads those only parallel conversion uses (chain numbering,
    reopening records, key ids), before the workers are forked; ``ring`` the
    AF_PACKET ring walk.
    """
    if ring:
        out = Scratch.allocate(1)
        walk_ring(np.zeros(64, np.uint8), 64, 1, 0, 64, np.zeros(64, np.uint8),
                  out.offset, out.caplen, out.wirelen, out.ts)  # fmt: skip
    if readers:
        buf, out = np.zeros(16, np.uint8), Scratch.allocate(1)
        walk.walk_pcap(buf, 0, 0, False, 1000, MAX_PCAP_CAPLEN,
                       out.offset, out.caplen, out.wirelen, out.ts)  # fmt: skip
        walk.walk_pcapng(buf, 0, 0, False, MAX_PCAPNG_BLOCK, np.zeros(0, np.int64),
                         out.offset, out.caplen, out.wirelen, out.ts_raw, out.iface)  # fmt: skip
    cache = FlowCache(cache_config)
    frame = np.zeros(64, np.uint8)
    frames = FrameBatch(
        frame, np.zeros(1, np.int64), np.array([64], np.uint32), np.array([64], np.uint32),
        np.zeros(1, np.int64), np.ones(1, np.uint16), np.zeros(1, np.uint32),
    )  # fmt: skip
    cache.update(decode(frames, cache_config.inner_tunnels, cache_config.attributes))
    cache.expire(0)
    if parallel:
        tracking = FlowCache(cache_config, track_chains=True)  # the slice tasks' way
        tracking.update(decode(frames))
        cache.adopt(tracking.flush().records(), 0)
        key_ids([RecordTable.empty(1)], cache_config.key_vlan, cache_config.key_mac)
    RowFormat.csv().render(cache.flush())
    RowFormat.csv().render(RecordTable.empty(1))
