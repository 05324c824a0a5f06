"""What a conversion produced, and the closing table the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..manifest import Accuracy, Manifest, OutputAccuracy


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
        return self.manifest.recipe.name if self.manifest.recipe else "?"

    @property
    def size_bytes(self) -> int:
        return self.manifest.model.size_bytes

    @property
    def source_bytes(self) -> int:
        return self.manifest.source.size_bytes if self.manifest.source else 0

    @property
    def ratio(self) -> float | None:
        """Converted size over float32 weight bytes (params x 4), the honest baseline."""
        ref = self.manifest.sizes.float32_weights_bytes if self.manifest.sizes else None
        return self.size_bytes / ref if ref else None

    @property
    def accuracy(self) -> OutputAccuracy | None:
        """The first classifier output's accuracy figures (else the first output's), or None."""
        return self.manifest.accuracy.output() if self.manifest.accuracy else None

    def table(self) -> str:
        m = self.manifest
        rows = [
            ("recipe", self.recipe),
            ("source", f"{m.source.path if m.source else '-'} ({human_bytes(self.source_bytes)})"),
            ("float32 weights", human_bytes(m.sizes.float32_weights_bytes if m.sizes else None)),
            ("output", f"{self.output} ({human_bytes(self.size_bytes)}, "
                       f"{human_bytes(m.model.size_zlib_bytes)} zlib)"),
            ("ratio", f"{self.ratio:.2f}x of float32 weights" if self.ratio else "-"),
        ]
        if m.pruning:
            rows.append(("sparsity", f"{m.pruning.sparsity_achieved:.0%} of kernel weights zero"
                                     + (" (fine-tuned)" if m.pruning.fine_tuned else "")))
        if m.accuracy:
            rows += _accuracy_rows(m.accuracy, pruned=m.pruning is not None)
        rows.append(("time", f"{self.seconds:.1f} s"))
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _accuracy_rows(acc: Accuracy, *, pruned: bool) -> list[tuple[str, str]]:
    """Table rows per output; with pruning, the drop pruning caused and the drop conversion caused apart."""
    rows = []
    many = len(acc.outputs) > 1
    for o in acc.outputs:
        tag = f" [{o.name}]" if many else ""
        if o.top1_converted is not None:
            if pruned:
                rows.append((f"top-1{tag}", f"original {o.top1_original:.2%} -> pruned {o.top1_source:.2%} "
                                            f"({o.pruning_delta_points:+.2f} points) -> converted "
                                            f"{o.top1_converted:.2%} ({o.conversion_delta_points:+.2f} points); "
                                            f"total {o.top1_delta_points:+.2f} points"))
            else:
                rows.append((f"top-1{tag}", f"{o.top1_source:.2%} -> {o.top1_converted:.2%} "
                                            f"({o.top1_delta_points:+.2f} points)"))
        if o.agreement is not None:
            rows.append((f"agreement{tag}", f"{o.agreement:.2%} of {acc.samples} samples"))
        sq = "identical" if o.sqnr_db is None else f"{o.sqnr_db:.1f} dB"
        rows.append((f"output error{tag}", f"max {o.max_abs_error:.4g}, mean {o.mean_abs_error:.4g}, SQNR {sq}"))
    return rows
