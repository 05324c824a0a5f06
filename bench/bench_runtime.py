"""The guard's cost against the bare interpreter, in one run: per-call CPU time and wall clock, load time, memory.

Models (built or adopted into ``--workdir``, reused next time):
- three published mediapipe 0.10.14 models of different sizes (tests/published_models.py, from the public
  wheel), adopted by ``edgekit.adopt`` with 300 real photo crops so the guard runs every check (range,
  finiteness, the OOD score with reach and colour, output checks, drift monitor): the face detector
  (128x128x3, ~1 ms), the selfie segmenter (256x256x3, ~3 ms), the palm detector (192x192x3, ~8 ms);
- the digits CNN as int8 with float input and output (``edgekit.convert``; needs TensorFlow, this script only).
``--engines`` adds the digits CNN as fp32 .tflite and fp32 .onnx: the guard's extra cost on each engine.

Per call: "raw" is the bare engine API called directly on the interpreter (or InferenceSession) the
EdgeModel itself holds (TFLite: set_tensor, invoke, get_tensor of every output; for integer input and
output, quantize before and dequantize after, as an app with float data must; ONNX Runtime:
InferenceSession.run); "guarded" is ``EdgeModel.predict`` of the float sample with OOD, drift monitoring and
an incident log file on. One instance for both sides because two instances of one model differ by up to
~2% in speed on their own (where the allocator put their buffers): the "instance spread" lines measure
two separate bare instances the same way, the noise floor of any comparison between instances.
Rounds interleave raw and guarded blocks of calls (about 20 ms each, 8 pairs per round) in one process;
each block is timed by process CPU time (all threads: a helper thread's work counts, other processes' does
not) and by the wall clock. Medians of the per-pair ratios and differences: a burst of other work on this
shared machine slows the blocks it falls in, and short paired blocks confine it to a few pairs.
Configurations: 1 thread and the core count; checks ``inline`` (overlap=False: no second core) and
``default`` (overlap=None: on a helper thread when the machine has 2+ cores and one invoke costs over 10x
the checks).

Load: bare = create + allocate + one invoke on zeros (the interpreter prepares XNNPACK on its first
invoke; EdgeModel.load does that run at load, so nothing waits for the first call); guarded =
``EdgeModel.load`` with the probe verdict cached (what every load after the first on a machine costs);
floor = the bare load plus the model's read and sha256 and its manifest's read (``floor_load``).
Memory: resident set growth of a fresh process that loads the model and makes 600 calls (the monitor
window is 500), guarded minus bare.

Run:  .venv/bin/python bench/bench_runtime.py [--rounds 7] [--workdir DIR] [--engines] [--quick] [--camera]
Acceptance (issue 20): 1 thread, inline, CPU time: <= 1.03x on every published model of 1 ms or more,
<= +8 us per clean call on digits int8; load <= 2x bare; RSS <= +5 MB on digits and the face detector.
(issue 16 item 7): the guard adds no more on ONNX Runtime than on TFLite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# published model -> (input side, the scaling it was trained with)
PUBLISHED = {
    "face_detection": (128, lambda p: p / 127.5 - 1.0),
    "selfie_segmentation": (256, lambda p: p / 255.0),
    "palm_detection": (192, lambda p: p / 127.5 - 1.0),
}


def build_models(out: Path, engines: bool) -> dict[str, tuple[Path, np.ndarray]]:
    """{name: (model path, one clean float sample)}: published models adopted, the digits CNN converted."""
    from published_models import fetch, photo_crops

    from edgekit.adopt import adopt

    models = {}
    files = fetch()
    for name, (side, scale) in PUBLISHED.items():
        dst = out / f"{name}.tflite"
        crops = photo_crops(340, side, seed=0).astype(np.float32)
        if not (dst.exists() and dst.with_suffix(".manifest.json").exists()):
            dst.write_bytes(files[name].read_bytes())
            np.save(out / f"{name}-calib.npy", scale(crops[:300]).astype(np.float32))
            adopt(dst, calibration=out / f"{name}-calib.npy", origin="mediapipe==0.10.14", force=True)
        models[name] = (dst, scale(crops[300:]).astype(np.float32))  # held-out crops: pick a clean one later
    models.update(_digits(out, engines))
    return models


def _digits(out: Path, engines: bool) -> dict[str, tuple[Path, np.ndarray]]:
    from edgekit.digits import load_split

    split = load_split()
    wanted = {"digits int8": (out / "digits-int8.tflite", "int8")}
    if engines:
        wanted["digits fp32 tflite"] = (out / "digits-fp32.tflite", "fp32")
        wanted["digits fp32 onnx"] = (out / "digits-fp32.onnx", "fp32")
    if not all(p.exists() for p, _ in wanted.values()):
        import edgekit
        from edgekit.digits import train_cnn

        keras_file = out / "digits.keras"
        if not keras_file.exists():
            import keras

            keras.utils.set_random_seed(0)
            train_cnn(split, epochs=3).save(keras_file)
        for path, recipe in wanted.values():
            if not path.exists():
                edgekit.convert(keras_file, path, recipe=recipe, calibration=split.x_calib, labels=split.labels,
                                preprocessing="digits", quiet=True, force=True)
    return {name: (path, split.x_test[:40]) for name, (path, _) in wanted.items()}


# ---- the bare engine ----------------------------------------------------------------------------------
def own_engine(model):
    """The EdgeModel's own interpreter (TFLite) or InferenceSession (ONNX Runtime): its pool's one slot."""
    free = model.runner._free
    slot = free.get()
    free.put(slot)
    raw = slot.session.raw if hasattr(slot.session, "raw") else slot.session
    return getattr(raw, "interp", None) or raw.sess


def bare_call(path: Path, sample: np.ndarray, threads: int | None, engine=None):
    """A bare-engine call on the float ``sample``, no edgekit checks in the loop: on ``engine`` (an
    interpreter or InferenceSession: the EdgeModel's own, see own_engine) or a new one from ``path``.

    A model with integer input and output (digits int8) takes and gives codes: an app with float data
    must quantize its input and dequantize the outputs on every call, so the bare loop does too, with
    edgekit.quant's Quantizer and Dequantizer (numpy; the fastest way we know, so the baseline is not
    inflated). The issue measured its 38.7 us raw call the same way ("raw with quantize and dequantize")."""
    from edgekit.engine.tflite import get_backend
    from edgekit.engine.tflite_interp import open_raw
    from edgekit.quant import Dequantizer, Quantizer

    if path.suffix == ".onnx":
        from edgekit.engine import onnx_interp

        sess = engine or onnx_interp.open_raw(onnx_interp.import_backend(), path.read_bytes(), threads=threads).sess
        name, raw_x = sess.get_inputs()[0].name, np.asarray(sample[None], np.float32)  # a view: --camera writes it
        return lambda: sess.run(None, {name: raw_x})
    interp = engine or open_raw(get_backend(), path.read_bytes(), threads=threads).interp
    inp, out_details = interp.get_input_details()[0], interp.get_output_details()
    outs = [d["index"] for d in out_details]
    scale, zp = inp["quantization"]
    x = np.asarray(sample[None], np.float32)  # a view of float32 input: --camera writes into it
    index, set_tensor, invoke, get = inp["index"], interp.set_tensor, interp.invoke, interp.get_tensor
    if not scale:
        def raw():
            set_tensor(index, x)
            invoke()
            return [get(i) for i in outs]

        return raw
    quantize = Quantizer(scale, zp, inp["dtype"])
    deq = [Dequantizer(*d["quantization"], d["dtype"]) if d["quantization"][0] else None for d in out_details]

    def raw_quantized():
        set_tensor(index, quantize(x))
        invoke()
        return [get(i) if d is None else d(get(i)) for i, d in zip(outs, deq)]

    return raw_quantized


def bare_load(path: Path, threads: int | None) -> float:
    """Seconds to create, allocate and run once on zeros a bare session (what an app does before serving)."""
    data = path.read_bytes()
    t0 = time.perf_counter()
    if path.suffix == ".onnx":
        from edgekit.engine import onnx_interp

        sess = onnx_interp.open_raw(onnx_interp.import_backend(), data, threads=threads).sess
        feeds = {a.name: np.zeros([d if isinstance(d, int) else 1 for d in a.shape], np.float32)
                 for a in sess.get_inputs()}
        sess.run(None, feeds)
    else:
        from edgekit.engine.tflite import get_backend
        from edgekit.engine.tflite_interp import invoke_on_zeros, open_raw

        invoke_on_zeros(open_raw(get_backend(), data, threads=threads, default_delegates=True, verify=False).interp)
    return time.perf_counter() - t0


def floor_load(path: Path, threads: int | None) -> float:
    """Seconds of the bare load plus the two steps any guarded load takes before it builds a guard: the
    model read and its sha256 (the tamper check), and its manifest read (from the parsed-manifest cache)."""
    import hashlib

    from edgekit import manifest_cache

    t0 = time.perf_counter()
    hashlib.sha256(path.read_bytes()).digest()
    manifest_cache.find(path)
    return time.perf_counter() - t0 + bare_load(path, threads)


def guarded_load(path: Path, threads: int | None, log: Path) -> float:
    from edgekit.runtime import EdgeModel

    t0 = time.perf_counter()
    model = EdgeModel.load(path, num_threads=threads, incident_log=log)
    dt = time.perf_counter() - t0
    model.close()
    return dt


# ---- timing -------------------------------------------------------------------------------------------
def _block(fn, calls: int) -> tuple[float, float]:
    """(CPU us, wall us) per call over ``calls`` calls."""
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.process_time() - c0) / calls * 1e6, (time.perf_counter() - w0) / calls * 1e6


PAIRS_PER_ROUND = 8  # short blocks, many pairs: a burst of another process's work spoils few of them


def measure(raw, guarded, rounds: int) -> dict[str, float]:
    one = min(_block(raw, 3)[1] for _ in range(3))
    calls = max(5, min(2500, int(20_000 / max(one, 1.0))))  # about 20 ms per block
    _block(raw, calls * 2)
    _block(guarded, calls * 2)
    rows = []
    for r in range(rounds * PAIRS_PER_ROUND):  # interleaved, the order alternating: neither side always first
        if r % 2:
            g, w = _block(guarded, calls), _block(raw, calls)
        else:
            w, g = _block(raw, calls), _block(guarded, calls)
        rows.append((w, g))
    med = statistics.median
    return {"raw_us": med(w[1] for w, _ in rows), "raw_cpu_us": med(w[0] for w, _ in rows),
            "cpu_ratio": med(g[0] / w[0] for w, g in rows), "cpu_extra_us": med(g[0] - w[0] for w, g in rows),
            "wall_ratio": med(g[1] / w[1] for w, g in rows), "wall_extra_us": med(g[1] - w[1] for w, g in rows)}


def clean_sample(model, samples: np.ndarray) -> np.ndarray:
    """The first held-out sample every check passes (the clean path is what is measured)."""
    for x in samples:
        x = np.ascontiguousarray(x, np.float32)
        if model.predict(x).ok:
            return x
    raise SystemExit("no clean held-out sample: the guard flags all of them")


def camera_pair(bare, model, path: Path, sample: np.ndarray):
    """(raw, guarded) calls that each first copy the next of 8 frames (copies of the clean sample, 8 places in
    memory) into one input array, then run on it: the copy is on both sides, so only its effect on the cache
    differs from the plain rounds (the guard reads an input the app has just written)."""
    frames = [sample.copy() for _ in range(8)]
    buf = np.empty_like(sample)
    raw_call = bare(path, buf, 1, own_engine(model))
    state = [0]

    def write():
        state[0] = (state[0] + 1) % 8
        np.copyto(buf, frames[state[0]])

    def raw():
        write()
        return raw_call()

    def guarded():
        write()
        return model.predict(buf)

    return raw, guarded


# ---- memory (a fresh process per side) ----------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_child(side: str, path: Path, sample_file: Path, threads: int) -> None:
    import edgekit.runtime  # noqa: F401  (both sides import the same code before the baseline)
    from edgekit.engine.tflite import get_backend

    get_backend()
    if path.suffix == ".onnx":
        from edgekit.engine.onnxrt import get_backend as onnx_backend

        onnx_backend()
    sample = np.load(sample_file)
    base = _rss()
    if side == "bare":
        fn = bare_call(path, sample, threads)
    else:
        from edgekit.runtime import EdgeModel

        model = EdgeModel.load(path, num_threads=threads, incident_log=sample_file.with_suffix(".jsonl"))
        fn = lambda: model.predict(sample)  # noqa: E731
    for _ in range(600):
        fn()
    print(json.dumps({"rss": _rss() - base}))


def rss_delta_mb(path: Path, sample: np.ndarray, threads: int, work: Path) -> float:
    sample_file = work / f"{path.stem}-sample.npy"
    np.save(sample_file, sample)
    got = {}
    for side in ("bare", "guarded"):
        out = subprocess.run([sys.executable, __file__, "--rss-child", side, str(path), str(sample_file),
                              str(threads)], capture_output=True, text=True, check=True)
        got[side] = json.loads(out.stdout.strip().splitlines()[-1])["rss"]
    return (got["guarded"] - got["bare"]) / 2**20


# ---- main ---------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workdir", type=Path, help="keep the built models here and reuse them next time")
    ap.add_argument("--engines", action="store_true", help="also the digits fp32 CNN as .tflite and as .onnx")
    ap.add_argument("--quick", action="store_true", help="1 thread and inline checks only")
    ap.add_argument("--camera", action="store_true",
                    help="also 1 thread inline with each call's input freshly written (a camera loop)")
    ap.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        side, path, sample, threads = args.rss_child
        rss_child(side, Path(path), Path(sample), int(threads))
        return 0
    from edgekit.runtime import EdgeModel

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models = build_models(work, args.engines)
        log = work / "incidents.jsonl"
        print(f"EdgeModel.predict (OOD, drift, incident log on) vs the bare engine; medians of {args.rounds} "
              f"interleaved rounds; {cores} cores, load average {os.getloadavg()[0]:.2f} at start")
        print(f"{'model':20} {'raw ms':>7} {'thr':>3} {'checks':7} {'cpu x':>6} {'cpu +us':>8} "
              f"{'wall x':>6} {'wall +us':>8}")
        threads_list = [1] if args.quick else sorted({1, cores})
        modes = [("inline", False)] if args.quick else [("inline", False), ("default", None)]
        extra = {}
        samples = {}
        for name, (path, held) in models.items():
            for threads in threads_list:
                for mode, overlap in modes:
                    model = EdgeModel.load(path, num_threads=threads, overlap=overlap, incident_log=log)
                    x = samples.setdefault(name, clean_sample(model, held))
                    r = measure(bare_call(path, x, threads, own_engine(model)), lambda: model.predict(x), args.rounds)
                    model.close()
                    if threads == 1 and mode == "inline":
                        extra[name] = r
                    print(f"{name:20} {r['raw_us'] / 1e3:7.3f} {threads:3d} {mode:7} {r['cpu_ratio']:6.3f} "
                          f"{r['cpu_extra_us']:8.1f} {r['wall_ratio']:6.3f} {r['wall_extra_us']:8.1f}", flush=True)
        if args.camera:
            print("\ncamera loop: before each call (both sides) the next of 8 frames is copied into the input array, "
                  "so the input is fresh in cache as when an app has just written it; 1 thread, checks inline")
            for name, (path, _) in models.items():
                model = EdgeModel.load(path, num_threads=1, overlap=False, incident_log=log)
                r = measure(*camera_pair(bare_call, model, path, samples[name]), args.rounds)
                model.close()
                print(f"{name:20} {r['raw_us'] / 1e3:7.3f} {1:3d} {'camera':7} {r['cpu_ratio']:6.3f} "
                      f"{r['cpu_extra_us']:8.1f} {r['wall_ratio']:6.3f} {r['wall_extra_us']:8.1f}", flush=True)
        print("\ninstance spread: two separately created bare instances, 1 thread, measured as above")
        for name, (path, _) in models.items():
            r = measure(bare_call(path, samples[name], 1), bare_call(path, samples[name], 1), args.rounds)
            print(f"{name:20} {r['raw_us'] / 1e3:7.3f} {1:3d} {'bare':7} {r['cpu_ratio']:6.3f} "
                  f"{r['cpu_extra_us']:8.1f} {r['wall_ratio']:6.3f} {r['wall_extra_us']:8.1f}", flush=True)
        print()
        print(f"{'model':20} {'bare load ms':>12} {'EdgeModel.load ms':>17} {'ratio':>6} {'floor x':>7} "
              f"{'RSS +MB':>8}")
        for name, (path, _) in models.items():
            guarded_load(path, 1, log)  # the probe verdict cached: every load after the first on a machine
            runs = [(bare_load(path, 1), guarded_load(path, 1, log), floor_load(path, 1)) for _ in range(11)]
            b, g, f = (statistics.median(r[i] for r in runs) for i in range(3))
            rss = rss_delta_mb(path, samples[name], 1, work)
            print(f"{name:20} {b * 1e3:12.2f} {g * 1e3:17.2f} {g / b:6.2f} {f / b:7.2f} {rss:8.2f}", flush=True)
        print("floor x: the bare load plus reading and hashing the model and reading its cached manifest, "
              "no guard built (what any guarded load takes), over the bare load")
        if args.engines:
            t, o = extra["digits fp32 tflite"]["cpu_extra_us"], extra["digits fp32 onnx"]["cpu_extra_us"]
            print(f"\nguard's extra CPU per call, digits fp32, 1 thread, inline: .tflite +{t:.1f} us, "
                  f".onnx +{o:.1f} us (onnx/tflite {o / t:.2f})")
        print(f"load average {os.getloadavg()[0]:.2f} at the end (other processes inflate wall-clock columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
