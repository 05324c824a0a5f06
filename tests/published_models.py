"""Real published .tflite models for tests, taken from public wheels at test time (never committed).

``pip download --no-deps PKG==VERSION`` fetches the wheel; only the model files are unzipped, into
``~/.cache/edgekit/published/PKG-VERSION/`` (outside the repo), written atomically: extracted to a
temporary folder next to it, then renamed, so a cut-off run never leaves half a cache. A second
session reuses the folder without the network.

mediapipe 0.10.14 (cp311 manylinux x86_64 wheel, 2024-05) carries its solutions' models, e.g.
``face_detection_short_range.tflite`` (128x128x3 float input in [-1, 1], 896 anchors) and
``selfie_segmentation.tflite`` (256x256x3 float input in [0, 1], a mask).

    python tests/published_models.py     # fetch (or reuse) and print the paths

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
}
CACHE = Path(os.environ.get("EDGEKIT_PUBLISHED_CACHE", Path.home() / ".cache" / "edgekit" / "published"))


def fetch(package: str = PACKAGE, version: str = VERSION, members: dict[str, str] = MODELS) -> dict[str, Path]:
    """{short name: path} of the wheel's model files in the cache, downloading the wheel once."""
    folder = CACHE / f"{package}-{version}"
    if not all((folder / Path(m).name).is_file() for m in members.values()):
        _extract(package, version, members.values(), folder)
    return {name: folder / Path(m).name for name, m in members.items()}


def _extract(package: str, version: str, members, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
        wheels = Path(tmp) / "wheel"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{package}=={version}", "-d", str(wheels),
               "--python-version", "3.11", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
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
    for name, path in fetch().items():
        print(name, path)
