"""The outcome of a fast path's self-check: its first use in a run compared with the plain path.

The one-pass sync kernel (:mod:`lookahead.optim.fused_sync`) is checked against the foreach sync, and a
CUDA graph's first replay (:mod:`lookahead.train.graphs`) against an eager step; a failed check switches
that run to the plain path and warns once (docs/gpu.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SelfCheck:
    path: str  # which fast path: "sync_kernel" or "cuda_graph"
    passed: bool
    error: float  # the largest difference found, in the unit of `tolerance`
    tolerance: float
    detail: str  # what was compared, and where the two differ most

    def to_dict(self) -> dict[str, Any]:
        """For summary.json: a non-finite error as a string ("inf", "nan"), which strict JSON allows."""
        data = asdict(self)
        if not math.isfinite(self.error):
            data["error"] = str(self.error)
        return data

    def warn(self, fallback: str) -> None:
        """Say once that this run leaves the fast path, and why."""
        warnings.warn(
            f"{self.path} self-check failed ({self.detail}: {self.error:.3g} > {self.tolerance:g}); "
            f"this run goes on with {fallback}",
            RuntimeWarning,
            stacklevel=3,
        )
