"""Guarded predict vs the raw interpreter, in one process: the runtime's overhead as ratios.

Builds two real models with TensorFlow (this script only; the runtime itself never imports it):
- MobileNetV2 at 96x96 (weights=None, random weights: latency is what matters), fp32, about 1 ms;
- the digits CNN (trained a few epochs), int8 with float input and output, about 10 us.

Both go through ``edgekit.convert`` so their manifests carry calibration statistics and the
guard runs every check (range, int8 clipping, OOD score, output distribution, monitoring).
"Raw" is set_tensor + invoke + get_tensor on its own interpreter with the same thread count,
fed an already-quantized array. Three ways, medians over rounds:
- paired:   calls alternate raw, guarded, raw, ... so both see the same background load;
- loop:     blocks of calls to one model, as an app runs it (blocks alternate between the two);
- loop-cpu: the loop by process CPU time, all threads: the overlap helper thread's work counts,
            time taken by other processes on a shared machine does not.
Large inputs on slow models run the input checks on a helper thread during invoke (``overlap``),
so their wall-clock cost hides behind inference while their CPU cost shows in loop-cpu.

Run:  .venv/bin/python bench/bench_runtime.py [--rounds 15] [--threads 1] [--workdir DIR] [--engines]
--engines adds the digits CNN as fp32 .tflite and fp32 .onnx: the guard's extra cost on each engine
("raw" for ONNX is a bare onnxruntime.InferenceSession.run with the same session options).
Acceptance (issue 3): ratio <= 1.05 on the ~1 ms model; extra <= 30 us per call on the tiny one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_models(out: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """{name: (tflite path, one float sample)} for the MobileNetV2 and the digits model (reused if in ``out``)."""
    from edgekit.digits import load_split

    rng = np.random.default_rng(0)
    calib = rng.uniform(-1, 1, (64, 96, 96, 3)).astype(np.float32)
    split = load_split()
    mnet, digits = out / "mobilenetv2-96-fp32.tflite", out / "digits-int8.tflite"
    if not (mnet.exists() and digits.exists()):
        _convert_both(out, calib, split)
    models = {"mobilenetv2-96 fp32": (mnet, calib[0]), "digits int8": (digits, split.x_test[0])}
    if ENGINES:  # the same digits CNN as fp32 on both engines (issue 16: the guard's cost on ONNX Runtime)
        for suffix in (".tflite", ".onnx"):
            path = out / f"digits-fp32{suffix}"
            if not path.exists():
                import edgekit

                edgekit.convert(out / "digits.keras", path, recipe="fp32", calibration=split.x_calib,
                                labels=split.labels, preprocessing="digits", quiet=True, force=True)
            models[f"digits fp32 {suffix[1:]}"] = (path, split.x_test[0])
    return models


ENGINES = False  # --engines: add the digits fp32 model as .tflite and as .onnx


def _convert_both(out: Path, calib: np.ndarray, split) -> None:
    import keras

    import edgekit
    from edgekit.digits import train_cnn

    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=10)
    net.save(out / "mobilenetv2.keras")
    edgekit.convert(out / "mobilenetv2.keras", out / "mobilenetv2-96-fp32.tflite", recipe="fp32",
                    calibration=calib, quiet=True, force=True)
    train_cnn(split, epochs=3).save(out / "digits.keras")
    edgekit.convert(out / "digits.keras", out / "digits-int8.tflite", recipe="int8", calibration=split.x_calib,
                    labels=split.labels, preprocessing="digits", quiet=True, force=True)


def paired_round(raw, guarded, calls: int) -> tuple[float, float]:
    """Mean wall us per call of each, alternating call by call (both see the same background load)."""
    clock = time.perf_counter
    t_raw = t_guarded = 0.0
    for _ in range(calls):
        t0 = clock()
        raw()
        t1 = clock()
        guarded()
        t2 = clock()
        t_raw += t1 - t0
        t_guarded += t2 - t1
    return t_raw / calls * 1e6, t_guarded / calls * 1e6


def loop_round(raw, guarded, calls: int, clock) -> tuple[float, float]:
    """Mean us per call of each over a loop of ``calls`` calls (one model at a time, as an app runs)."""
    out = []
    for fn in (raw, guarded):
        t0 = clock()
        for _ in range(calls):
            fn()
        out.append((clock() - t0) / calls * 1e6)
    return out[0], out[1]


def measure(path: Path, sample: np.ndarray, rounds: int, threads: int | None,
            overlap: bool | None = None) -> dict[str, float]:
    from edgekit.engine.tflite import get_backend
    from edgekit.engine.tflite_interp import open_raw
    from edgekit.quant import quantize
    from edgekit.runtime import EdgeModel

    model = EdgeModel.load(path, num_threads=threads, overlap=overlap)
    if path.suffix == ".onnx":  # the bare ONNX Runtime session, same options as edgekit's
        from edgekit.engine import onnx_interp

        sess = onnx_interp.open_raw(onnx_interp.import_backend(), path.read_bytes(), threads=threads).sess
        name, raw_x = sess.get_inputs()[0].name, sample[None].astype(np.float32)

        def raw():
            return sess.run(None, {name: raw_x})
    else:
        interp = open_raw(get_backend(), path.read_bytes(), threads=threads).interp  # the bare interpreter
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        scale, zp = inp["quantization"]
        raw_x = quantize(sample[None], scale, zp, inp["dtype"]) if scale else sample[None].astype(inp["dtype"])

        def raw():
            interp.set_tensor(inp["index"], raw_x)
            interp.invoke()
            return interp.get_tensor(out["index"])

    def guarded():
        return model.predict(sample)

    assert guarded().ok, "the benchmark sample must pass every check (measure the clean path)"
    once, _ = paired_round(raw, guarded, 20)
    calls = max(20, min(5000, int(100_000 / max(once, 1.0))))  # about 0.2 s per round
    paired_round(raw, guarded, calls // 4)  # warm up
    res: dict[str, float] = {"calls": calls}
    # paired: call by call; loop: blocks of calls, wall clock and process CPU time (all threads, so
    # the overlap helper's work counts; time taken by other processes does not).
    modes = (("paired", lambda: paired_round(raw, guarded, calls)),
             ("loop", lambda: loop_round(raw, guarded, calls, time.perf_counter)),
             ("loop-cpu", lambda: loop_round(raw, guarded, calls, time.process_time)))
    for tag, fn in modes:
        pairs = [fn() for _ in range(rounds)]
        res[tag] = {"raw_us": statistics.median(r for r, _ in pairs),
                    "guarded_us": statistics.median(g for _, g in pairs),
                    "ratio": statistics.median(g / r for r, g in pairs),
                    "extra_us": statistics.median(g - r for r, g in pairs)}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, help="keep the built models here and reuse them next time")
    ap.add_argument("--engines", action="store_true", help="also the digits fp32 CNN as .tflite and as .onnx")
    args = ap.parse_args()
    global ENGINES
    ENGINES = args.engines
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models = build_models(work)
        print(f"guarded EdgeModel.predict vs raw set_tensor/invoke/get_tensor; {args.threads} thread(s), "
              f"median of {args.rounds} rounds of alternating calls; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f} at start")
        print(f"{'model':22} {'mode':8} {'raw us':>9} {'guarded us':>11} {'ratio':>7} {'extra us':>9}")
        # The large model once more with its checks inline (no helper thread), for comparison.
        runs = [(name, path, sample, None) for name, (path, sample) in models.items()]
        runs.insert(1, ("mobilenetv2 no overlap", *models["mobilenetv2-96 fp32"], False))
        for name, path, sample, overlap in runs:
            r = measure(path, sample, args.rounds, args.threads, overlap)
            for mode in ("paired", "loop", "loop-cpu"):
                m = r[mode]
                print(f"{name:22} {mode:8} {m['raw_us']:9.1f} {m['guarded_us']:11.1f} {m['ratio']:7.3f} "
                      f"{m['extra_us']:9.1f}")
        print(f"load average {os.getloadavg()[0]:.2f} at the end (other processes inflate both columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
