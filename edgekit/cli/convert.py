"""``edgekit convert``: Keras / SavedModel -> .tflite + manifest."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def convert(
    source: Path = typer.Argument(..., help="A .keras file, a legacy .h5 file, a SavedModel folder, or an .onnx file (to .onnx only)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the .tflite (manifest goes next to it)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Recipe name (edgekit recipes) or .toml path."),
    calibration: List[str] = typer.Option([], "--calibration", "-c", help="Calibration data: .npy, .npz (x; or one array per input name) or image folder; NAME=PATH per input of a several-input model (repeatable)."),
    eval_data: List[str] = typer.Option([], "--eval", "-e", help="Eval data: .npz (x, y; or one array per input name, y, y_OUTPUT) or image folder with class sub-folders; NAME=PATH per input (repeatable)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Labelled data (.npz x, y) to fine-tune after pruning."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Device profile (edgekit targets); picks its recipe when --recipe is absent."),
    prune: Optional[float] = typer.Option(None, "--prune", help="Magnitude-prune to this sparsity (0..1) before converting."),
    epochs: int = typer.Option(2, "--fine-tune-epochs", help="Epochs of fine-tuning after pruning (with --train)."),
    compat: Optional[str] = typer.Option(None, "--compat", help="Make the file loadable by an older runtime: tflite-runtime-2.14."),
    select_tf_ops: bool = typer.Option(False, "--select-tf-ops", help="Allow TensorFlow ops (the device needs the Flex delegate)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Text file with one class label per line."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Image input scaling: 0-1, -1-1, imagenet or raw (default: what numeric calibration data shows, else 0-1; a contradiction is an error)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUTPUT if it exists (never the source)."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON instead of the table."),
    debug: bool = typer.Option(False, "--debug", help="Rank layers (ONNX: nodes) by the error int8 quantization adds (needs --calibration)."),
    debug_report: Optional[Path] = typer.Option(None, "--debug-report", help="Write the full per-layer table as JSON (implies --debug)."),
    denylist: Optional[list[str]] = typer.Option(None, "--denylist", help="Keep this layer (ONNX: node, or a Keras layer's nodes) in float in an int8 recipe (repeatable; names from --debug)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Fix the batch dimension (e.g. 1): static input shapes, as the Edge TPU and microcontrollers need (Keras sources)."),
) -> None:
    """Convert a model to TensorFlow Lite with a recipe, and check its accuracy.

    Example: edgekit convert digits.keras -o digits-int8.tflite --recipe int8 --calibration calib.npz --eval eval.npz

    Example: edgekit convert digits.keras -o d.tflite --recipe int8-float-io -c calib.npz --debug --debug-report layers.json

    Example: edgekit convert digits.onnx -o digits-int8.onnx --recipe int8 --calibration calib.npz --eval eval.npz

    Example: edgekit convert digits.onnx -o d.onnx --recipe int8 -c calib.npz --debug --denylist probs
    """
    from ..conversion import convert as run
    from ..data import named_sources

    result = run(source, output, recipe=recipe, calibration=named_sources(calibration, "--calibration"),
                 eval_data=named_sources(eval_data, "--eval"),
                 train_data=train, target=target, prune=prune, fine_tune_epochs=epochs, compat=compat,
                 select_tf_ops=select_tf_ops, labels=labels, normalize=normalize, force=force,
                 debug=debug or debug_report is not None, denylist=denylist or None, batch_size=batch_size)
    typer.echo(result.manifest.to_json() if json_out else result.table())
    if result.debug is not None:
        from ..conversion.debug import write_report

        if debug_report is not None:
            write_report(result.debug, debug_report)
        if not json_out:
            what = "nodes" if output.suffix.lower() == ".onnx" else "layers"
            typer.echo(f"\n{what} ranked by the error int8 quantization adds:\n" + result.debug.table())


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
