"""``edgekit run``: predictions from a converted model behind the runtime guard, with every check's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def _load_input(path: Path):
    """An image path stays a path (the runtime decodes it); .npy is loaded here as plain numbers,
    .npz as one array per input name (models with several inputs)."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        return path
    import numpy as np

    from ..errors import InputValidationError

    try:
        loaded = np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return loaded
    except (OSError, ValueError) as err:
        raise InputValidationError(f"{path}: not a readable {suffix} of numbers ({err})") from None


def _render(name: str, pred, k: int) -> list[str]:
    lines = []
    rows = pred.top_k(k) if pred.batched else [pred.top_k(k)]
    for i, (row, src) in enumerate(zip(rows if pred._model.classifier else [None] * pred.n, pred.sources)):
        where = f"{name}[{i}]" if pred.batched else name
        if row is None:
            values = pred.outputs[0][i].ravel()[:8]
            shown = " ".join(f"{v:.4g}" for v in values)
        else:
            shown = "  ".join(f"{label} ({p:.3f})" for label, p in row)
        tag = "" if src == "model" else f"  [{src}]"
        lines.append(f"{where}: {shown}{tag}")
    lines += [f"  {c}" for c in pred.checks]
    return lines


def run(
    model: Path = typer.Argument(..., help="A .tflite converted by edgekit (its manifest next to it)."),
    inputs: List[Path] = typer.Argument(..., help="Image files, .npy arrays (one sample or a batch), or .npz "
                                        "files with one array per input name (models with several inputs)."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="How many classes to show for classifiers."),
    fallback: Optional[Path] = typer.Option(None, "--fallback", help="A model to answer when the guard says so."),
    min_confidence: Optional[float] = typer.Option(None, "--min-confidence", help="Flag top-1 below this."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the sha256 check against the manifest."),
    normalize: Optional[str] = typer.Option(
        None, "--normalize", help="Pixel scaling for image inputs the manifest does not describe (published "
        "models): 0-1, -1-1, imagenet or raw; images are resized to the model's input shape. One that contradicts "
        "the manifest is an error."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Interpreter threads."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object per input."),
) -> None:
    """Predict with the guarded runtime and print each check's verdict (exit 1 if any flagged, or if the
    model file failed its integrity check even though the fallback answered).

    Example: edgekit run digits-int8.tflite seven.png samples.npy --top-k 3
    """
    from ..runtime import EdgeModel, Policy

    if normalize is not None:  # the manifest's scaling wins; one that contradicts it is a mistake to say
        from ..scaling import check_manifest_scaling

        check_manifest_scaling(model, normalize)
    policy = Policy(verify_sha256=not no_verify, min_confidence=min_confidence)
    flagged = False
    with EdgeModel.load(model, fallback=fallback, policy=policy, num_threads=threads,
                        preprocessing=normalize) as guarded:
        insecure = not guarded.security_ok
        for event in guarded.security:
            typer.echo(f"warning: {event['kind']}: {event['reason']}", err=True)
        for path in inputs:
            pred = guarded.predict(_load_input(path))
            flagged |= not all(c.ok for c in pred.checks)
            if json_out:
                typer.echo(json.dumps({"input": str(path), **pred.to_dict(top_k)}))
            else:
                typer.echo("\n".join(_render(str(path), pred, top_k)))
    if flagged or insecure:
        raise typer.Exit(1)  # a check failed: exit 1, like any failed check or budget in edgekit


def register(app: typer.Typer) -> None:
    app.command("run")(run)
