"""The candidates ``edgekit optimize`` tries: shipped recipes and their variants.

- ``fp32`` (the reference), ``fp16``, ``dynamic``;
- with calibration data: ``int8`` (int8 I/O), ``int16x8``, ``int8-float-io``, and ``int8-float-io`` with
  the k most error-prone layers kept in float (k = 1..FLOAT_TOP_K, taken from the per-layer
  debugger's ranking, which the ``int8-float-io`` trial produces);
- with a Keras source and ``--train`` data: magnitude pruning (50 % and 80 %) followed by
  dynamic range, and by int8 when there is calibration data.

Example:
    >>> [c.name for c in base_candidates(calibration=False, keras=True, train=False)]
    ['fp32', 'fp16', 'dynamic']
    >>> float_layer_candidates(["sensitive", "probs"], k_max=2)[1].name
    'int8-float-io+float(sensitive,probs)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

FLOAT_TOP_K = 3
PRUNE_LEVELS = (0.5, 0.8)
DEBUG_RECIPE = "int8-float-io"  # its trial also runs the per-layer debugger


@dataclass(frozen=True)
class Candidate:
    name: str
    recipe: str
    float_layers: tuple[str, ...] = ()
    prune: float | None = None
    debug: bool = False  # run the per-layer debugger in this trial (its ranking feeds the float-layer variants)

    def params(self) -> dict[str, Any]:
        """What the result depends on (the journal key); ``debug`` is not: it only adds a report."""
        d = asdict(self)
        d.pop("debug")
        d["float_layers"] = list(self.float_layers)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {**self.params(), "debug": self.debug}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(d["name"], d["recipe"], tuple(d.get("float_layers") or ()), d.get("prune"), bool(d.get("debug")))


def base_candidates(*, calibration: bool, keras: bool, train: bool) -> list[Candidate]:
    out = [Candidate("fp32", "fp32"), Candidate("fp16", "fp16"), Candidate("dynamic", "dynamic")]
    if calibration:
        out += [Candidate("int8", "int8"), Candidate(DEBUG_RECIPE, DEBUG_RECIPE, debug=True),
                Candidate("int16x8", "int16x8")]  # accurate, but about 26x slower than fp32 on CPUs
    if keras and train:
        for level in PRUNE_LEVELS:
            pct = int(round(level * 100))
            out.append(Candidate(f"prune{pct}-dynamic", "dynamic", prune=level))
            if calibration:
                out.append(Candidate(f"prune{pct}-int8-float-io", "int8-float-io", prune=level))
    return out


def float_layer_candidates(ranked: Sequence[str], k_max: int = FLOAT_TOP_K) -> list[Candidate]:
    """int8 with float I/O and the top-k ranked layers kept in float, k = 1..k_max."""
    out = []
    for k in range(1, min(k_max, len(ranked)) + 1):
        layers = tuple(ranked[:k])
        out.append(Candidate(f"{DEBUG_RECIPE}+float({','.join(layers)})", DEBUG_RECIPE, float_layers=layers))
    return out


def select_names(cands: list[Candidate], only: Sequence[str] | None) -> list[Candidate]:
    """Keep the named base candidates (``--candidates fp32,dynamic``); None keeps all."""
    if not only:
        return cands
    return [c for c in cands if c.name in only]
