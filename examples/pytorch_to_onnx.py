"""A PyTorch model leaves PyTorch as ONNX; edgekit takes it from there.

Run where PyTorch is installed (edgekit's tests do not install it: on PyPI its Linux x86_64 wheel
pulls about 3 GB of CUDA libraries; a CPU build is enough here):

    python examples/pytorch_to_onnx.py -o digits.onnx       # trains a small CNN on scikit-learn's digits

then, with `pip install "edgekit[onnx]"`:

    edgekit adopt digits.onnx --calibration calib.npz --eval eval.npz   # the manifest: stats, OOD reference
    edgekit run digits.onnx digit.png                                   # guarded predictions
    edgekit profile digits.onnx --runs 200                              # latency and memory

The export call is the one that matters: ``dynamo=True`` (the exporter PyTorch recommends since 2.5),
names for every input and output (edgekit matches inputs and outputs by name, never by position),
a dynamic batch dimension so one file serves batch 1 on a device and larger batches in evaluation,
and ``external_data=False``: the dynamo exporter otherwise writes the weights to a second file
(``digits.onnx.data``) that must travel with the model; one file is what signing and the store expect.
"""

from __future__ import annotations

import argparse

import numpy as np


def train(epochs: int = 10):
    import torch
    from torch import nn
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # N, 1, 8, 8 (PyTorch is channels-first)
    y = d.target.astype(np.int64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(32 * 4 * 4, 10), nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    xt, yt = torch.from_numpy(x[:1300]), torch.from_numpy(y[:1300])
    for _ in range(epochs):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            loss = nn.functional.nll_loss(torch.log(model(xt[i:i + 64]) + 1e-9), yt[i:i + 64])
            loss.backward()
            opt.step()
    acc = float((model(torch.from_numpy(x[1300:])).argmax(1).numpy() == y[1300:]).mean())
    return model.eval(), x, y, acc


def export(model, sample, path: str) -> None:
    import torch

    torch.onnx.export(model.eval(), (torch.from_numpy(sample),), path, dynamo=True, external_data=False,
                      input_names=["image"], output_names=["scores"],
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default="digits.onnx")
    args = ap.parse_args()
    model, x, y, acc = train()
    export(model, x[:2], args.output)
    np.savez("calib.npz", image=x[:300])
    np.savez("eval.npz", image=x[1300:], y=y[1300:])
    print(f"{args.output}: held-out top-1 {acc:.3f} in PyTorch; calib.npz and eval.npz written")


if __name__ == "__main__":
    main()
