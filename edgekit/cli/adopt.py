"""``edgekit adopt``: a manifest for a .tflite or .onnx edgekit did not make, so the guard, store, audit and profile take it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def adopt(
    model: Path = typer.Argument(..., help="A .tflite or .onnx file made elsewhere (a published model, a PyTorch export, another team's file)."),
    calibration: List[str] = typer.Option([], "--calibration", "-c", help="Typical inputs: .npy, .npz (x; or one array per input name) or image folder; NAME=PATH per input of a several-input model (repeatable). Samples stack on a new first axis for every input, also a state batched elsewhere ([2, batch, 128]: N x 2 x 128) and a scalar (N values)."),
    eval_data: List[str] = typer.Option([], "--eval", "-e", help="Eval data with labels (.npz x, y) or image folder with class sub-folders: the file's accuracy goes in the manifest."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Text file with one class label per line."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Image input scaling: 0-1, -1-1, imagenet or raw (default: what numeric calibration data or a quantized input shows; a contradiction is an error)."),
    task: Optional[str] = typer.Option(None, "--task", help="classification, regression or unknown (default: from the eval data and labels)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Where the file came from (a package and version, a URL), kept in the provenance."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing manifest (the model file is never changed)."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON instead of the table."),
) -> None:
    """Write the manifest next to a .tflite or .onnx edgekit did not convert (the file itself is not changed).

    Example: edgekit adopt face_detection_short_range.tflite --calibration crops.npy --origin mediapipe==0.10.14
    """
    from ..adopt import adopt as run
    from ..data import named_sources

    result = run(model, calibration=named_sources(calibration, "--calibration"), eval_data=named_sources(eval_data, "--eval"), labels=labels,
                 normalize=normalize, task=task, origin=origin, force=force)
    typer.echo(result.manifest.to_json() if json_out else result.table())


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt)
