"""Build hook: compile the kernels ahead of time while pip installs spanflow (aot.build).

If the compile fails (no C compiler, a numba without pycc) the install still
succeeds and spanflow runs on numba's JIT, as ``aot`` explains.
"""

from __future__ import annotations

import sys
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class KernelBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        sys.path.insert(0, self.root)
        try:
            from aot.build import build_if_stale

            module = build_if_stale()
        except Exception as error:  # any failure leaves the JIT path, never a failed install
            self.app.display_warning(f"spanflow: kernels not compiled ahead of time: {error}")
            return
        finally:
            sys.path.remove(self.root)
        if version == "editable":
            return  # the files stay in the source tree the install points to
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["artifacts"] += [f"aot/{module.name}", "aot/_kernels.json"]
