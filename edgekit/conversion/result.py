"""What a conversion produced, and the closing table the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..manifest import Manifest


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"


@dataclass
class ConvertResult:
    """The facts of one conversion (the same the CLI's closing table shows)."""

    output: Path
    manifest_path: Path
    manifest: Manifest
    seconds: float
    warnings: list[str] = field(default_factory=list)
    debug: Any = None  # a debug.DebugReport when convert(debug=True)

    @property
    def recipe(self) -> str:
        return self.manifest.recipe.get("name", "?")

    @property
    def size_bytes(self) -> int:
        return int(self.manifest.model["size_bytes"])

    @property
    def source_bytes(self) -> int:
        return int(self.manifest.source.get("size_bytes") or 0)

    @property
    def ratio(self) -> float | None:
        """Converted size over float32 weight bytes (params x 4), the honest baseline."""
        ref = self.manifest.sizes.get("float32_weights_bytes")
        return self.size_bytes / ref if ref else None

    @property
    def accuracy(self) -> dict[str, Any] | None:
        return self.manifest.accuracy

    def table(self) -> str:
        m = self.manifest
        rows = [
            ("recipe", self.recipe),
            ("source", f"{m.source.get('path')} ({human_bytes(self.source_bytes)})"),
            ("float32 weights", human_bytes(m.sizes.get("float32_weights_bytes"))),
            ("output", f"{self.output} ({human_bytes(self.size_bytes)}, "
                       f"{human_bytes(m.model.get('size_zlib_bytes'))} zlib)"),
            ("ratio", f"{self.ratio:.2f}x of float32 weights" if self.ratio else "-"),
        ]
        if m.pruning:
            rows.append(("sparsity", f"{m.pruning['sparsity_achieved']:.0%} of kernel weights zero"
                                     + (" (fine-tuned)" if m.pruning["fine_tuned"] else "")))
        acc = m.accuracy
        if acc:
            if "top1_source" in acc:
                rows.append(("top-1", f"{acc['top1_source']:.2%} -> {acc['top1_converted']:.2%} "
                                      f"({acc['top1_delta_points']:+.2f} points)"))
            if "agreement" in acc:
                rows.append(("agreement", f"{acc['agreement']:.2%} of {acc['samples']} samples"))
            o = acc["outputs"][0]
            sq = "identical" if o["sqnr_db"] is None else f"{o['sqnr_db']:.1f} dB"
            rows.append(("output error", f"max {o['max_abs_error']:.4g}, mean {o['mean_abs_error']:.4g}, SQNR {sq}"))
        rows.append(("time", f"{self.seconds:.1f} s"))
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)
