"""Real published .tflite models for tests, taken from public wheels at test time (never committed).

``pip download --no-deps PKG==VERSION`` fetches the wheel; only the model files are unzipped, into
``~/.cache/edgekit/published/PKG-VERSION/`` (outside the repo), written atomically: extracted to a
temporary folder next to it, then renamed, so a cut-off run never leaves half a cache. A second
session reuses the folder without the network.

mediapipe 0.10.14 (cp311 manylinux x86_64 wheel, 2024-05) carries its solutions' models, e.g.
``face_detection_short_range.tflite`` (128x128x3 float input in [-1, 1], 896 anchors) and
``selfie_segmentation.tflite`` (256x256x3 float input in [0, 1], a mask), ``hand_landmark_full.tflite``
(224x224x3 in [0, 1], 21 landmarks) and ``palm_detection_lite.tflite`` (192x192x3 in [-1, 1]).

    python tests/published_models.py     # fetch (or reuse) and print the paths
    python tests/published_models.py --silero /tmp/silero    # Silero VAD adopted, with calib.npz, call.npz

Real photos: ``photo_crops`` cuts scikit-learn's two sample photos (china.jpg, flower.jpg) into
many seeded random square crops, resized to the model's input: real photo data for calibration
and held-out evaluation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE, VERSION = "mediapipe", "0.10.14"
MODELS = {  # short name -> path inside the wheel
    "face_detection": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "selfie_segmentation": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    # larger models of other sizes, for the guard's cost (bench/bench_runtime.py)
    "hand_landmark": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
    "palm_detection": "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
}
# Silero VAD (silero-vad 6.2.0, pure-Python wheel, 2025): a 2.3 MB ONNX voice activity detector with
# three inputs, input [batch, samples] float (512 samples at 16 kHz), state [2, batch, 128] float
# (a recurrent state: batched on axis 1) and sr, a scalar int64 sample rate; outputs output [batch, 1]
# (speech probability) and stateN (the next state).
SILERO = ("silero-vad", "6.2.0", {"silero_vad": "silero_vad/data/silero_vad.onnx"})
CACHE = Path(os.environ.get("EDGEKIT_PUBLISHED_CACHE", Path.home() / ".cache" / "edgekit" / "published"))


def fetch(package: str = PACKAGE, version: str = VERSION, members: dict[str, str] = MODELS, *,
          platform: str = "manylinux2014_x86_64") -> dict[str, Path]:
    """{short name: path} of the wheel's model files in the cache, downloading the wheel once.
    Two wheels can ship files of one name: a folder per package keeps them apart."""
    folder = CACHE / f"{package}-{version}"
    if not all((folder / Path(m).name).is_file() for m in members.values()):
        _extract(package, version, members.values(), folder, platform)
    return {name: folder / Path(m).name for name, m in members.items()}


def _extract(package: str, version: str, members, folder: Path, platform: str = "manylinux2014_x86_64") -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
        wheels = Path(tmp) / "wheel"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{package}=={version}", "-d", str(wheels),
               "--python-version", "3.11", "--only-binary=:all:", "--platform", platform,
               "--quiet", "--disable-pip-version-check"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = list(wheels.glob("*.whl"))
        if done.returncode != 0 or not found:
            raise RuntimeError(f"pip download {package}=={version} failed: {done.stderr.strip()[-500:]}")
        staged = Path(tmp) / "models"
        staged.mkdir()
        with zipfile.ZipFile(found[0]) as whl:
            for member in members:
                (staged / Path(member).name).write_bytes(whl.read(member))  # only the model files
        if folder.exists():  # an older, incomplete cache: replace it whole
            shutil.rmtree(folder)
        os.replace(staged, folder)


# Real models of several kinds for the arena planner (bench/bench_arena.py, tests/targets/test_arena.py):
# {package: (version, wheel platform, {short name: (kind, path inside the wheel)})}.
_MP = "mediapipe/modules/"
ARENA_MODELS = {
    "mediapipe": (VERSION, "manylinux2014_x86_64", {
        "face_detection": ("detection", _MP + "face_detection/face_detection_short_range.tflite"),
        "face_detection_full_sparse": ("detection", _MP + "face_detection/face_detection_full_range_sparse.tflite"),
        "palm_detection_lite": ("detection", _MP + "palm_detection/palm_detection_lite.tflite"),
        "pose_detection": ("detection", _MP + "pose_detection/pose_detection.tflite"),
        "face_landmark": ("landmarks", _MP + "face_landmark/face_landmark.tflite"),
        "hand_landmark_full": ("landmarks", _MP + "hand_landmark/hand_landmark_full.tflite"),
        "pose_landmark_full": ("landmarks", _MP + "pose_landmark/pose_landmark_full.tflite"),
        "iris_landmark": ("landmarks", _MP + "iris_landmark/iris_landmark.tflite"),
        "hand_recrop": ("landmarks", _MP + "holistic_landmark/hand_recrop.tflite"),
        "selfie_segmentation": ("segmentation", _MP + "selfie_segmentation/selfie_segmentation.tflite"),
    }),
    "pymicro-wakeword": ("2.5.0", "manylinux_2_35_x86_64", {  # int8 streaming wake words made for MCUs
        "micro_okay_nabu": ("audio", "pymicro_wakeword/models/okay_nabu.tflite"),
        "micro_hey_jarvis": ("audio", "pymicro_wakeword/models/hey_jarvis.tflite"),
    }),
    "pyopen-wakeword": ("1.1.0", "manylinux_2_35_x86_64", {
        "oww_embedding": ("audio", "pyopen_wakeword/models/embedding_model.tflite"),
        "oww_melspectrogram": ("audio", "pyopen_wakeword/models/melspectrogram.tflite"),
        "oww_hey_mycroft": ("classification", "pyopen_wakeword/models/hey_mycroft.tflite"),
        "oww_alexa": ("classification", "pyopen_wakeword/models/alexa.tflite"),
    }),
}
TFLITE_MICRO = "0.dev20261023182759"  # TFLM's Python interpreter (x86, reference kernels)


def fetch_arena_models(names=None) -> dict[str, tuple[str, Path]]:
    """{short name: (kind, path)} of ARENA_MODELS (or only ``names``), each wheel downloaded once."""
    out = {}
    for package, (version, platform, models) in ARENA_MODELS.items():
        want = {n: m for n, m in models.items() if names is None or n in names}
        if want:
            paths = fetch(package, version, {n: m[1] for n, m in models.items()}, platform=platform)
            out.update({n: (models[n][0], paths[n]) for n in want})
    return out


def fetch_tflite_micro() -> Path:
    """A folder to put on sys.path for ``tflite_micro`` (the wheel unzipped, never installed)."""
    folder = CACHE / f"tflite-micro-{TFLITE_MICRO}"
    if not (folder / "tflite_micro" / "__init__.py").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"tflite-micro=={TFLITE_MICRO}", "-d", tmp,
                   "--python-version", "3.11", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                   "--quiet", "--disable-pip-version-check"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            found = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not found:
                raise RuntimeError(f"pip download tflite-micro failed: {done.stderr.strip()[-500:]}")
            staged = Path(tmp) / "site"
            with zipfile.ZipFile(found[0]) as whl:
                whl.extractall(staged)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staged, folder)
    return folder


def photo_crops(n: int, size: int, *, seed: int = 0) -> np.ndarray:
    """n uint8 (size, size, 3) crops of scikit-learn's two sample photos, seeded random squares."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(rng.integers(min(size, 64), min(photo.shape[:2])))
        top, left = (int(rng.integers(0, photo.shape[a] - side + 1)) for a in (0, 1))
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        out[i] = np.asarray(crop.resize((size, size), Image.BILINEAR))
    return out


def speech_like(n_chunks: int, *, seed: int = 0, chunk: int = 512, rate: int = 16000) -> np.ndarray:
    """(n_chunks, chunk) float32 audio, seeded and synthetic (no public wheel ships speech): a room
    hiss throughout, and "syllables" of a voiced sound (a gliding 90-250 Hz pitch with its harmonics,
    shaped by two formant-like resonances, in a rising-falling envelope) separated by pauses."""
    rng = np.random.default_rng(seed)
    n = n_chunks * chunk
    t = np.arange(n) / rate
    x = 0.003 * rng.standard_normal(n)
    start = int(rng.integers(rate // 10, rate // 3))
    while start < n:
        length = int(rng.integers(rate // 8, rate // 3))  # 125-330 ms syllables
        end = min(n, start + length)
        tt = t[start:end] - t[start]
        f0 = rng.uniform(90, 250) * (1 + rng.uniform(-0.2, 0.2) * tt / max(tt[-1], 1e-3))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = rng.uniform(300, 900), rng.uniform(900, 2500)
        voiced = sum(np.sin(k * phase) * sum(1 / (1 + ((k * f0 - f) / 150) ** 2) for f in formants)
                     for k in range(1, 16))
        env = np.sin(np.pi * np.linspace(0, 1, end - start)) ** 0.7
        x[start:end] += rng.uniform(0.05, 0.4) * env * voiced / np.abs(voiced).max()
        start = end + int(rng.integers(rate // 20, rate // 2))  # 50-500 ms pauses
    return x.astype(np.float32).reshape(n_chunks, chunk)


SILERO_CONTEXT = 64  # samples of the previous chunk silero-vad's own wrapper puts before each 512 (at 16 kHz)


def silero_windows(chunks: np.ndarray) -> np.ndarray:
    """(N, 512) chunks -> (N, 576) model inputs: each chunk after the last 64 samples of the one before,
    as silero-vad's OnnxWrapper feeds it (without that context the model answers about 0 everywhere)."""
    chunks = np.asarray(chunks, np.float32)
    context = np.concatenate([np.zeros((1, SILERO_CONTEXT), np.float32), chunks[:-1, -SILERO_CONTEXT:]])
    return np.concatenate([context, chunks], axis=1)


def silero_stream(model: Path, chunks: np.ndarray, *, rate: int = 16000) -> dict[str, np.ndarray]:
    """Stream ``chunks`` through Silero VAD with bare ONNX Runtime, carrying the state: per chunk what it
    was fed, batch-first (input (N, 576), state (N, 2, 128), sr (N,)), and its speech probability."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    windows = silero_windows(chunks)
    state, states, probs = np.zeros((2, 1, 128), np.float32), [], []
    for w in windows:
        states.append(state[:, 0])
        prob, state = sess.run(None, {"input": w[None], "state": state, "sr": np.array(rate, np.int64)})
        probs.append(float(prob[0, 0]))
    return {"input": windows, "state": np.stack(states), "sr": np.full(len(windows), rate, np.int64),
            "prob": np.asarray(probs, np.float32)}


def adopted_silero(folder: Path) -> Path:
    """Silero VAD copied into ``folder`` and adopted by ``edgekit adopt`` on 300 streamed chunks of
    speech_like audio (calib.npz: batch-first input (N, 576), state (N, 2, 128), sr (N,)); beside it
    call.npz, one held-out call in the model's own layout (input (1, 576), state (2, 1, 128), sr ())
    and stream.npy, 40 held-out windows (40, 576) to stream with the state carried."""
    from edgekit.cli import main

    source = fetch(*SILERO)["silero_vad"]
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "silero.onnx"
    shutil.copyfile(source, model)
    calib = silero_stream(source, speech_like(300, seed=1))
    np.savez(folder / "calib.npz", input=calib["input"], state=calib["state"], sr=calib["sr"])
    held = silero_stream(source, speech_like(40, seed=3))
    np.savez(folder / "call.npz", input=held["input"][20:21], state=held["state"][20][:, None],
             sr=np.array(16000, np.int64))
    np.save(folder / "stream.npy", held["input"])
    if main(["adopt", str(model), "--calibration", str(folder / "calib.npz")]) != 0:
        raise RuntimeError(f"edgekit adopt {model} failed")
    return model


# PaddleOCR's text-direction classifier (MobileNetV3, opset 11; input x [N, 3, 48, W] in [-1, 1], output
# [N, 2]: upright or upside down), shipped in rapidocr-onnxruntime's pure-Python wheel
OCR_WHEEL = ("rapidocr-onnxruntime", "1.4.4",
             {"text_direction": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"})
WORDS = ("the quick brown fox jumps over lazy dog model edge device int8 float quantize calibrate runtime guard "
         "invoice total amount date number street city receipt price tax 2026 12 06 09:40 OK").split()


def text_lines(n: int, *, seed: int = 0, height: int = 48, width: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """n text-line crops as the classifier takes them, and their labels (1: upside down), seeded.

    Words in the DejaVu fonts (Debian's fonts-dejavu-core) drawn on crops of scikit-learn's two sample
    photos, light or dark against the crop, half of them blurred, half turned 180 degrees, with sensor-like
    noise; resized to ``height`` keeping the aspect, padded to ``width``, scaled to [-1, 1] as RapidOCR does."""
    import glob

    from PIL import Image, ImageDraw, ImageFilter, ImageFont
    from sklearn.datasets import load_sample_images

    fonts = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf"))
    if not fonts:
        raise RuntimeError("no DejaVu fonts in /usr/share/fonts/truetype/dejavu: apt-get install fonts-dejavu-core")
    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    x, y = np.zeros((n, 3, height, width), np.float32), np.zeros(n, np.int64)
    for i in range(n):
        font = ImageFont.truetype(fonts[rng.integers(len(fonts))], int(rng.integers(14, 34)))
        text = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
        left, top, right, bottom = font.getbbox(text)
        w, h = right - left + 8, bottom - top + 8
        photo = photos[rng.integers(len(photos))]
        r, c = int(rng.integers(0, photo.shape[0] - h)), int(rng.integers(0, photo.shape[1] - w))
        img = Image.fromarray(photo[r:r + h, c:c + w])
        ink = rng.integers(0, 60, 3) if np.asarray(img).mean() > 110 else rng.integers(200, 256, 3)
        ImageDraw.Draw(img).text((4 - left, 4 - top), text, font=font, fill=tuple(int(v) for v in ink))
        if rng.random() < 0.5:
            img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
        y[i] = int(rng.random() < 0.5)
        if y[i]:
            img = img.rotate(180)
        fit = min(width, int(np.ceil(height * img.width / img.height)))
        a = np.asarray(img.resize((fit, height), Image.BILINEAR), np.float32)
        a = np.clip(a + rng.normal(0, rng.uniform(0, 12), a.shape), 0, 255) / 127.5 - 1.0
        x[i, :, :, :fit] = a.transpose(2, 0, 1)
    return x, y


if __name__ == "__main__":
    if sys.argv[1:2] == ["--silero"]:  # python tests/published_models.py --silero DIR: adopted, with call.npz
        print(adopted_silero(Path(sys.argv[2])))
    else:
        for name, path in fetch().items():
            print(name, path)
