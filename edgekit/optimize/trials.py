"""One trial: convert with a candidate (edgekit.convert), read its accuracy and size; and latency.

``run_trial`` runs in a worker (a local process or a Ray task): it converts into a temporary
folder and returns the figures with the model and manifest bytes, so the caller alone
writes into the work folder (a Ray worker on another machine has no access to it).
Latency is measured afterwards, by the caller, for every candidate on the same machine
(here, or the ``--host`` device over SSH) through edgekit.profile: figures from workers
running conversions side by side would measure the contention, not the model.

Example:
    >>> out = run_trial(Candidate("dynamic", "dynamic").to_dict(), inputs)   # doctest: +SKIP
    >>> out["result"]["size_bytes"], out["result"]["drop_points"]            # doctest: +SKIP
    (48008, 0.0)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import EdgekitError
from .space import Candidate, file_name


@dataclass
class TrialInputs:
    """What every trial reads. ``files`` (name -> {relative path: bytes}) replaces the paths when
    the trial runs where the paths do not exist (Ray)."""

    source: str
    calibration: str | None
    eval_data: str | None
    train_data: str | None
    out_name: str
    target: str | None = None
    compat: str | None = None
    fine_tune_epochs: int = 2
    files: dict[str, dict[str, bytes]] | None = None
    normalize: str | None = None  # as convert's --normalize
    labels: tuple[str, ...] | None = None  # read once from --labels, so every trial (and Ray) has them

    def settings(self) -> dict[str, Any]:
        """The settings a result depends on besides the candidate (part of the journal key)."""
        out = {"target": self.target, "compat": self.compat, "fine_tune_epochs": self.fine_tune_epochs,
               "out_name": self.out_name}
        if self.normalize is not None or self.labels is not None:  # keys of earlier journals stay valid
            out.update(normalize=self.normalize, labels=list(self.labels or ()))
        return out


def pack(path: str | None) -> dict[str, bytes] | None:
    """A file or folder as {relative path: bytes} ('' for a single file)."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        return {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
    return {"": p.read_bytes()}


def shipped(inputs: TrialInputs) -> TrialInputs:
    """A copy of ``inputs`` that carries the files themselves."""
    files = {k: pack(getattr(inputs, k)) for k in ("source", "calibration", "eval_data", "train_data")}
    return TrialInputs(**{**inputs.__dict__, "files": {k: v for k, v in files.items() if v is not None}})


def _unpack(inputs: TrialInputs, where: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key in ("source", "calibration", "eval_data", "train_data"):
        original = getattr(inputs, key)
        content = (inputs.files or {}).get(key)
        if original is None or content is None:
            out[key] = original
            continue
        dest = where / key / Path(original).name  # keep the name: the suffix says the format
        for rel, data in content.items():
            f = dest / rel if rel else dest
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
        out[key] = str(dest)
    return out


def figures(result) -> dict[str, Any]:
    """Accuracy drop and size from a ConvertResult.

    The drop is in points of top-1 against the labels when the eval data has them,
    else 100 x (1 - agreement with the source model's top-1)."""
    m = result.manifest
    acc = m.accuracy.output() if m.accuracy else None  # the first classifier output, else the first
    if acc is not None and acc.top1_delta_points is not None:
        drop, basis = -acc.top1_delta_points, "labels"  # against the original source: pruning included
    elif acc is not None and acc.agreement is not None:
        drop, basis = 100.0 * (1.0 - acc.agreement), "agreement"
    else:
        drop, basis = None, "none"
    return {
        "size_bytes": result.size_bytes,
        "size_zlib_bytes": m.model.size_zlib_bytes,
        "sha256": m.model.sha256,
        "drop_points": drop,
        "drop_basis": basis,
        "top1": acc.top1_converted if acc else None,
        "top1_source": acc.top1_source if acc else None,
        "agreement": acc.agreement if acc else None,
        "sqnr_db": acc.sqnr_db if acc else None,
        "sparsity": m.pruning.sparsity_achieved if m.pruning else None,
        "convert_seconds": round(result.seconds, 2),
        "warnings": list(result.warnings),
    }


def recipe_of(cand: Candidate):
    """The recipe name, or the recipe with the candidate's ONNX overrides (per channel, calibration method)."""
    if cand.per_channel is None and cand.calibration_method is None:
        return cand.recipe
    import dataclasses

    from ..recipes import load_recipe

    rec = load_recipe(cand.recipe)
    over = {k: v for k, v in (("per_channel", cand.per_channel), ("calibration_method", cand.calibration_method))
            if v is not None}
    return dataclasses.replace(rec, onnx=dataclasses.replace(rec.onnx, **over))


def run_trial(candidate: dict[str, Any], inputs: TrialInputs) -> dict[str, Any]:
    """Convert with one candidate; returns {"result": figures or {"error"}, "model": bytes, "manifest": text}."""
    import edgekit
    from ..manifest import manifest_path_for

    cand = Candidate.from_dict(candidate)
    with tempfile.TemporaryDirectory(prefix="edgekit-trial-") as tmp:
        paths = _unpack(inputs, Path(tmp))
        out = Path(tmp) / "out" / file_name(inputs.out_name, cand.engine)
        out.parent.mkdir()
        try:
            res = edgekit.convert(
                paths["source"], out, recipe=recipe_of(cand), calibration=paths["calibration"],
                eval_data=paths["eval_data"], train_data=paths["train_data"] if cand.prune else None,
                target=inputs.target, prune=cand.prune, fine_tune_epochs=inputs.fine_tune_epochs,
                compat=inputs.compat, quiet=True, force=True, debug=cand.debug,
                denylist=list(cand.float_layers) or None, normalize=inputs.normalize, labels=inputs.labels)
        except EdgekitError as err:  # a recipe the model cannot take is a result, not a crash
            return {"result": {"error": str(err)}}
        result = figures(res)
        if res.debug is not None:
            result["debug"] = res.debug.to_dict()
        return {"result": result, "model": out.read_bytes(),
                "manifest": manifest_path_for(out).read_text(encoding="utf-8")}


# ---- latency (the caller's side) -------------------------------------------------------------

@dataclass
class LatencySettings:
    runs: int = 200
    warmup: int = 20
    threads: int = 1
    host: str | None = None  # user@device: profile there over SSH
    ssh: dict[str, Any] = field(default_factory=dict)  # SSHOptions fields (key, port, python, ...)

    @property
    def where(self) -> str:
        return f"ssh {self.host}" if self.host else "local"


def profile_once(path: Path, s: LatencySettings, runs: int | None = None) -> dict[str, Any]:
    """p50/p95 of one fresh profile run (edgekit.profile: a new process, here or on the host)."""
    from .. import profile as prof

    kw = dict(runs=runs or s.runs, warmup=s.warmup, threads=s.threads)
    if s.host:
        from ..profile.remote_ssh import SSHOptions

        opts = SSHOptions(**{k: v for k, v in s.ssh.items() if v is not None})
        doc = prof.profile_ssh(path, s.host, opts, **kw)
    else:
        doc = prof.profile_model(path, **kw)
    lat = doc["rows"][0]["latency_ms"]
    return {"p50": float(lat["p50"]), "p95": float(lat["p95"]), "runs": int(lat["count"]),
            "where": s.where, "threads": s.threads}


def head_to_head(paths: dict[str, Path], s: LatencySettings, rounds: int = 5,
                 on_step: Callable[[], None] | None = None) -> dict[str, dict[str, Any]]:
    """Interleaved rounds (A B C, B C A, ...): each gets the same share of the machine's moods.

    Returns name -> {"p50": median of the per-round p50s, "rounds": [...]}."""
    import statistics

    names = list(paths)
    per: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            per[n].append(profile_once(paths[n], s)["p50"])
            if on_step:
                on_step()
    return {n: {"p50": statistics.median(v), "rounds": v} for n, v in per.items()}
