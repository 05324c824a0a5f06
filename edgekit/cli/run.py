"""``edgekit run``: predictions from a converted model behind the runtime guard, with every check's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def _load_input(path: Path, input_names: list[str]):
    """An image path stays a path (the runtime decodes it); .npy is loaded here as plain numbers,
    .npz as its array ``x`` (the file convert, audit and profile take) or else one array per input
    name (models with several inputs)."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        return path
    import numpy as np

    from ..errors import InputValidationError

    try:
        loaded = np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with loaded:
                if "x" in loaded.files and "x" not in input_names:
                    return loaded["x"]  # labels (y) and the rest are for convert and audit
                return {k: loaded[k] for k in loaded.files}
        return loaded
    except (OSError, ValueError) as err:
        raise InputValidationError(f"{path}: not a readable {suffix} of numbers ({err})") from None


def _render(name: str, pred, k: int) -> list[str]:
    """Per sample: the top-k labels of a classifier on the first line, then every output by name and
    shape (a summary for large ones: detections, masks); then each check's verdict.

    Example line: ``  classificators [896, 1]  range -92.1 .. 3.2, top 3.2 @(412, 0)  1.1 @(7, 0)``
    """
    lines = []
    pos = pred._model.classifier_output if pred._model.classifier else None
    rows = None if pos is None else pred.top_k(k) if pred.batched else [pred.top_k(k)]
    for i, src in enumerate(pred.sources):
        where = f"{name}[{i}]" if pred.batched else name
        shown = "" if rows is None else " " + "  ".join(f"{label} ({p:.3f})" for label, p in rows[i])
        tag = "" if src == "model" else f"  [{src}]"
        lines.append(f"{where}:{shown}{tag}")
        for j, (oname, out) in enumerate(zip(pred.output_names, pred.outputs)):
            lines.append(f"  {oname} {list(out.shape[1:])}  {'top-k above' if j == pos else _summary(out[i])}")
    lines += [f"  {c}" for c in pred.checks]
    return lines


def _summary(values, top: int = 3) -> str:
    """One sample's output in a few numbers: all of them when there are at most 8, else the value
    range and the largest values with where they are (a detector's best anchors, a mask's peak)."""
    import numpy as np

    flat = values.ravel()
    if flat.size <= 8:
        return " ".join(f"{v:.4g}" for v in flat)
    best = np.argsort(flat)[::-1][:top]
    where = [tuple(int(a) for a in np.unravel_index(b, values.shape)) for b in best]
    tops = "  ".join(f"{flat[b]:.4g} @{w if len(w) > 1 else w[0]}" for b, w in zip(best, where))
    return f"range {flat.min():.4g} .. {flat.max():.4g}, top {tops}"


def _load_quietly(model: Path, **kwargs):
    """EdgeModel.load with the interpreter's C++ log line ("Created TensorFlow Lite XNNPACK delegate")
    kept off the terminal: fd 2 is redirected during the load; anything else said there is passed on."""
    from ..conversion.tf import captured  # fd-level capture; imports no TensorFlow
    from ..runtime import EdgeModel

    box = None
    try:
        with captured() as box:
            return EdgeModel.load(model, **kwargs)
    finally:
        rest = [line for line in (box.text if box is not None else "").splitlines()
                if line.strip() and "XNNPACK delegate" not in line]
        if rest:
            typer.echo("\n".join(rest), err=True)


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
    from ..runtime import Policy

    if normalize is not None:  # the manifest's scaling wins; one that contradicts it is a mistake to say
        from ..scaling import check_manifest_scaling

        check_manifest_scaling(model, normalize)
    policy = Policy(verify_sha256=not no_verify, min_confidence=min_confidence)
    flagged = False
    with _load_quietly(model, fallback=fallback, policy=policy, num_threads=threads,
                       preprocessing=normalize) as guarded:
        insecure = not guarded.security_ok
        for event in guarded.security:
            typer.echo(f"warning: {event['kind']}: {event['reason']}", err=True)
        for path in inputs:
            pred = guarded.predict(_load_input(path, guarded.input_names))
            flagged |= not all(c.ok for c in pred.checks)
            if json_out:
                typer.echo(json.dumps({"input": str(path), **pred.to_dict(top_k)}))
            else:
                typer.echo("\n".join(_render(str(path), pred, top_k)))
    if flagged or insecure:
        raise typer.Exit(1)  # a check failed: exit 1, like any failed check or budget in edgekit


def register(app: typer.Typer) -> None:
    app.command("run")(run)
