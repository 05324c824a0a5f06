"""``edgekit harden``: PGD adversarial fine-tuning of a Keras classifier, source and hardened model side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def harden(
    source: Path = typer.Argument(..., help="The Keras classifier to fine-tune (.keras or .h5); never overwritten."),
    output: Path = typer.Option(..., "-o", "--output", help="The hardened model (.keras), written atomically."),
    train: Path = typer.Option(..., "--train", help="Labelled training data (.npz with x and y, or a class folder)."),
    eval_data: Path = typer.Option(..., "--eval", help="Labelled eval data for clean and robust accuracy."),
    epsilon: List[float] = typer.Option([], "--epsilon", help="PGD radius to measure, input units, L-infinity "
                                        "(repeatable; default 2, 5, 10, 20% of the value range). The largest is "
                                        "trained against."),
    train_epsilon: Optional[float] = typer.Option(None, "--train-epsilon", help="Train against this radius instead."),
    epochs: int = typer.Option(10, "--epochs", help="Fine-tuning epochs."),
    steps: int = typer.Option(7, "--steps", help="PGD steps per training batch (measurement uses the audit's 10)."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam's learning rate."),
    batch_size: int = typer.Option(64, "--batch-size", help="Clean samples per batch (plus as many adversarial)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Also convert both models (e.g. int8) and measure "
                                         "the files; the hardened one is written to OUTPUT-RECIPE.tflite."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration data for --recipe "
                                               "(default: 300 training samples)."),
    min_gain: float = typer.Option(10.0, "--min-gain", help="Robust accuracy gain at the largest epsilon, points."),
    max_clean_cost: float = typer.Option(3.0, "--max-clean-cost",
                                         help="Clean accuracy the hardening may cost, points."),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffles, PGD starts and subsets."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace OUTPUT (and its converted file) if they exist."),
    json_out: bool = typer.Option(False, "--json", help="Print the edgekit.harden/1 document instead of the table."),
) -> None:
    """Fine-tune a classifier against PGD attacks; exit 0 if it gained robustness cheaply, 1 if not, 2 for bad input.

    Example: edgekit harden digits.keras --train train.npz --eval eval.npz -o digits-robust.keras --recipe int8 --calibration calib.npz

    Then audit the file that ships: edgekit audit digits-robust-int8.tflite --source digits-robust.keras --eval eval.npz
    """
    from ..audit.harden import harden as run, table

    doc = run(source, output, train, eval_data, epsilons=epsilon or None, train_epsilon=train_epsilon, epochs=epochs,
              steps=steps, learning_rate=learning_rate, batch_size=batch_size, recipe=recipe, calibration=calibration,
              max_clean_cost=max_clean_cost, min_gain=min_gain, seed=seed, force=force)
    typer.echo(json.dumps(doc, indent=1) if json_out else table(doc))
    if not doc["verdict"]["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("harden")(harden)
