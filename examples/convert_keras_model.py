"""Convert your own Keras model with every common recipe and compare them.

Run from a clone:  .venv/bin/python examples/convert_keras_model.py
It trains a stand-in model on scikit-learn's digits; replace `train()` with
`keras.models.load_model("yours.keras")` and the data with your own
(calibration: 100-500 typical inputs; eval: held-out inputs and labels).
"""

from pathlib import Path

import numpy as np

import edgekit
from edgekit.digits import load_split, train_cnn

out = Path("example-out")
out.mkdir(exist_ok=True)

split = load_split()
np.savez(out / "calib.npz", x=split.x_calib)  # what `--calibration` reads
np.savez(out / "eval.npz", x=split.x_test, y=split.y_test, labels=np.array(split.labels))  # `--eval`
train_cnn(split, epochs=8).save(out / "model.keras")

for recipe in ("fp32", "fp16", "dynamic", "int8", "int8-float-io"):
    result = edgekit.convert(out / "model.keras", out / f"model-{recipe}.tflite", recipe=recipe,
                             calibration=out / "calib.npz", eval_data=out / "eval.npz", force=True)
    acc = result.accuracy
    print(f"{recipe:14} {result.size_bytes / 1024:7.1f} KB  top-1 {acc['top1_converted']:.2%} "
          f"({acc['top1_delta_points']:+.2f} points)  agreement {acc['agreement']:.2%}")
# The same from a shell:
#   edgekit convert example-out/model.keras -o example-out/model-int8.tflite --recipe int8 \
#       --calibration example-out/calib.npz --eval example-out/eval.npz
