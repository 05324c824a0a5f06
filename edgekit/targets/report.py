"""What ``edgekit check`` found: one report per model and target, for .tflite and .onnx checks alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rules import ERROR, WARNING, Finding


@dataclass(frozen=True)
class CheckReport:
    model: str
    target: str
    interpreter: str
    findings: tuple[Finding, ...]
    size_bytes: int
    weight_bytes: int
    arena_bytes: int | None  # the target interpreter's planned arena (edgekit.engine.arena); None for .onnx
    arena_caveat: str = ""  # why the plan may be off (ops with unknown scratch, dynamic shapes); '' when none

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def compatible(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "interpreter": self.interpreter,
                "compatible": self.compatible, "size_bytes": self.size_bytes, "weight_bytes": self.weight_bytes,
                "arena_bytes_estimate": self.arena_bytes, "arena_caveat": self.arena_caveat or None,
                "findings": [{"severity": f.severity, "code": f.code, "message": f.message} for f in self.findings]}

    def render(self) -> str:
        verdict = "compatible" if self.compatible else "NOT compatible"
        n_err, n_warn = len(self.errors), len(self.warnings)
        head = (f"{self.model} on {self.target} ({self.interpreter}): {verdict}: {n_err} error(s), {n_warn} warning(s); "
                f"file {self.size_bytes / 1024:,.1f} KB, weights {self.weight_bytes / 1024:,.1f} KB"
                + ("" if self.arena_bytes is None else f", arena ~{self.arena_bytes / 1024:,.1f} KB (planned{'; ' + self.arena_caveat if self.arena_caveat else ''})"))
        return "\n".join([head] + [f.line() for f in self.findings])
