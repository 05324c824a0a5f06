"""``edgekit optimize``: try the recipes and their variants, print the Pareto table, write the best one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


class _Bars:
    """One progress bar per phase (trials, latency, head-to-head), from the search's events."""

    def __init__(self):
        self.bar, self.phase = None, None

    def __call__(self, phase: str, done: int, total: int) -> None:
        from ..progress import Progress

        if phase != self.phase:
            self.close()
            self.bar, self.phase = Progress(phase, total).__enter__(), phase
        self.bar.total, self.bar.done = total, done
        self.bar.advance(0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def optimize(
    source: Path = typer.Argument(..., help="A .keras file, a legacy .h5 file, a SavedModel folder or an .onnx file."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the chosen model (manifest next to it); with several engines the pick keeps its own suffix (.tflite or .onnx)."),
    engines: Optional[str] = typer.Option(None, "--engines", help="tflite, onnx or tflite,onnx: whose candidates to search, in one table (default: the engine OUTPUT's suffix names)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", "-c", help="Calibration data (.npy/.npz/images); without it no int8 candidates."),
    eval_data: Optional[Path] = typer.Option(None, "--eval", "-e", help="Eval data: .npz x (and y for labels); without labels the drop is disagreement with the source."),
    train: Optional[Path] = typer.Option(None, "--train", help="Labelled data (.npz x, y): adds pruned candidates, fine-tuned on it."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Device profile (edgekit targets): recorded in the manifest; its latency budget applies."),
    max_drop: float = typer.Option(1.0, "--max-accuracy-drop", help="Accuracy budget: points of top-1 lost (or of disagreement)."),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="Latency budget on p95, in ms."),
    max_size_kb: Optional[float] = typer.Option(None, "--max-size-kb", help="Size budget of the .tflite, in KiB."),
    host: Optional[str] = typer.Option(None, "--host", help="user@device: measure latency there over SSH."),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="identity file for ssh"),
    ssh_port: Optional[int] = typer.Option(None, "--ssh-port", help="ssh port"),
    ssh_option: List[str] = typer.Option([], "--ssh-option", help="extra ssh -o KEY=VALUE (repeatable)"),
    remote_python: str = typer.Option("python3", "--remote-python", help="python with numpy and ai-edge-litert on the device"),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run trials on a Ray cluster: auto or HOST:PORT (pip install 'edgekit[ray]')."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel local trial processes (default: the cores)."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="Only these base candidates, e.g. fp32,dynamic,int8-float-io."),
    float_top_k: int = typer.Option(3, "--float-top-k", help="Also try int8 with the 1..K most error-prone layers in float (0: no)."),
    runs: int = typer.Option(200, "--runs", help="Timed runs per latency measurement."),
    threads: int = typer.Option(1, "--threads", help="Interpreter threads when measuring latency."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Text file with one class label per line (as convert)."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Image input scaling: 0-1, -1-1, imagenet or raw (as convert: checked against numeric calibration data)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUTPUT if it exists (never the source)."),
    json_out: bool = typer.Option(False, "--json", help="Print the whole result (edgekit.optimize/1) as JSON."),
) -> None:
    """Try fp16, dynamic, int8, int8 with sensitive layers in float and pruning; pick the fastest within budgets.

    On ONNX Runtime (-o OUT.onnx or --engines onnx) int8 is tried per channel and per tensor with three
    calibration methods, and with the nodes that add the most error kept in float.
    Finished trials are journalled in OUT.optimize/: rerunning the same command resumes.
    Exit 1 when no candidate meets every budget (the closest are listed).

    Example: edgekit optimize digits.keras -o digits.tflite --calibration calib.npz --eval eval.npz --max-accuracy-drop 1 --max-size-kb 60

    Example: edgekit optimize digits.keras -o digits.tflite --engines tflite,onnx -c calib.npz -e eval.npz --max-size-kb 90
    """
    from ..errors import CheckFailed
    from ..optimize import Budgets, LatencySettings, optimize as run
    from ..optimize.render import table

    budgets = Budgets(max_drop, max_latency_ms, max_size_kb)
    lat = LatencySettings(runs=runs, threads=threads, host=host,
                          ssh=dict(key=ssh_key, port=ssh_port, options=list(ssh_option), python=remote_python))
    bars = _Bars()
    try:
        res = run(source, output, calibration=calibration, eval_data=eval_data, train_data=train, target=target,
                  budgets=budgets, candidates=[c.strip() for c in candidates.split(",")] if candidates else None,
                  float_top_k=float_top_k, workers=workers, ray=ray, latency=lat, normalize=normalize,
                  labels=labels, force=force, on_event=bars,
                  engines=[e.strip() for e in engines.split(",") if e.strip()] if engines else None)
    finally:
        bars.close()
    sel = res.selection
    if json_out:
        typer.echo(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        typer.echo(table(res.rows, sel, res.budgets))
        typer.echo(f"trials: {res.ran} run, {res.reused} reused from {res.work_dir / 'journal.jsonl'}; "
                   f"latency measured {res.latency_where}, {threads} thread(s)")
        for note in res.notes[1:]:  # the first is the conversion time, said above as trials
            typer.echo(f"note: {note}")
        for engine, rep in res.debug_reports.items():
            key = rep.get("key", "rmse_per_scale")
            top = ", ".join(f"{e.get('name') or e['layer'] or e['tensor']} ({e[key]:.3g})" for e in rep["layers"][:3])
            what = "layers" if engine == "tflite" else "ONNX nodes"
            typer.echo(f"most error-prone {what} in int8 ({rep.get('metric', key)}): {top}")
        if sel.pick:
            typer.echo(f"picked {sel.pick['name']}: wrote {res.output} and its manifest")
    if sel.pick is None:
        near = "; ".join(f"{c['name']} (over: " + ", ".join(
            f"{k} by {'?' if v is None else f'{v:.0%}'}" for k, v in c["over"].items()) + ")" for c in sel.closest)
        raise CheckFailed(f"no candidate meets every budget ({json.dumps(budgets.to_dict())}); closest: {near or 'none'}")


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
