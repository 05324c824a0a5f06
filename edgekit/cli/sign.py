"""``edgekit sign``: sign a model together with its manifest (OpenSSF model-signing, EC key, offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def sign(
    model: Path = typer.Argument(..., help="the .tflite (its manifest next to it)"),
    key: Path = typer.Option(..., "--key", help="EC private key (PEM)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="the manifest (default: next to MODEL)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="signature file (default: MODEL.sig)"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Write MODEL.sig, a signature over the model and its manifest (needs edgekit[sign]).

    Example: edgekit sign digits-int8.tflite --key key.pem
    """
    from ..signing import sign as sign_model

    path = sign_model(model, key, manifest=manifest, out=out)
    typer.echo(json.dumps({"model": str(model), "signature": str(path)}) if json_out else f"signed: {path}")


def register(app: typer.Typer) -> None:
    app.command("sign")(sign)
