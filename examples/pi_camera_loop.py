"""A Raspberry Pi camera loop: frames in, guarded predictions out, drift watched.

Frames are Pillow images. With ``picamera2`` installed (Raspberry Pi OS: ``sudo apt install
python3-picamera2``) they come from the camera; otherwise from a folder of images (``--frames``),
looped, so the same script runs on a laptop. No TensorFlow anywhere: numpy, Pillow and
ai-edge-litert (or tflite-runtime) only.

Each frame is resized and normalized by the runtime from the manifest's preprocessing. A frame
the guard flags (dark lens cap, glare, noise, a scene unlike the training data) is answered by
the fallback model or skipped, as the policy says, and logged as an incident; every N frames
the loop prints the health summary (latency percentiles, input drift, disagreement with the
reference model in shadow mode).

Run:
    python examples/pi_camera_loop.py digits-int8.tflite --fallback digits-fp32.tflite
    python examples/pi_camera_loop.py digits-int8.tflite --frames some_pngs/ --max-frames 200
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Iterator

from edgekit.errors import EdgekitError
from edgekit.runtime import EdgeModel, Policy


def camera_frames(size: tuple[int, int] = (320, 240)) -> Iterator:
    """PIL frames from the Pi camera (picamera2), forever."""
    from picamera2 import Picamera2  # optional: only on a Pi with a camera

    cam = Picamera2()
    cam.configure(cam.create_still_configuration(main={"size": size, "format": "RGB888"}))
    cam.start()
    try:
        while True:
            yield cam.capture_image("main")
    finally:
        cam.stop()


def folder_frames(folder: Path) -> Iterator:
    """PIL frames from image files, looped: a stand-in camera for machines without one."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"})
    if not files:
        raise SystemExit(f"error: {folder}: no .png/.jpg/.bmp frames")
    for path in itertools.cycle(files):
        with Image.open(path) as img:
            img.load()
            yield img.copy()


def run(model: EdgeModel, frames: Iterator, max_frames: int | None, report_every: int) -> dict:
    counts = {"frames": 0, "flagged": 0, "errors": 0}
    for frame in itertools.islice(frames, max_frames):
        counts["frames"] += 1
        try:
            pred = model.predict(frame)
        except EdgekitError as err:  # a frame the policy refuses: count it, keep the loop alive
            counts["errors"] += 1
            print(f"frame {counts['frames']}: skipped ({err})")
            continue
        label, p = pred.top_k(1)[0]
        flag = "" if pred.ok else f"  flagged -> {pred.sources[0]}"
        counts["flagged"] += int(not pred.ok)
        print(f"frame {counts['frames']}: {label} ({p:.2f}) {pred.latency_ms:.1f} ms{flag}")
        if counts["frames"] % report_every == 0:
            h = model.health()
            drift = ", ".join(f"{name} {v.get('drift', 'n/a')}" for name, v in h.get("inputs", {}).items()) or "n/a"
            lat = h.get("latency_ms", {})
            print(f"-- health: p50 {lat.get('p50', 0):.1f} ms, p95 {lat.get('p95', 0):.1f} ms, drift {drift}, "
                  f"flagged {h.get('flagged_share', 0):.0%}, incidents {h['incidents']}, "
                  f"shadow {h.get('shadow', {}).get('disagreement_rate')}"
                  + ("" if h["security"]["ok"] else "  SECURITY: the model file failed its integrity check"))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description="Guarded inference on camera frames.")
    ap.add_argument("model")
    ap.add_argument("--fallback", help="model for flagged frames (and the shadow reference)")
    ap.add_argument("--frames", type=Path, help="folder of images instead of the camera")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--report-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="interpreter threads (a Pi 4/5 has 4 cores)")
    ap.add_argument("--shadow", type=float, default=0.05, help="share of frames also run on the fallback")
    args = ap.parse_args()
    policy = Policy(on_ood="fallback" if args.fallback else "allow", latency_budget_ms=200.0)
    try:
        model = EdgeModel.load(args.model, fallback=args.fallback, policy=policy, num_threads=args.threads,
                               incident_log="camera-incidents.jsonl", shadow=args.shadow if args.fallback else 0.0)
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    frames = folder_frames(args.frames) if args.frames else camera_frames()
    t0 = time.perf_counter()
    with model:
        counts = run(model, frames, args.max_frames, args.report_every)
    print(f"{counts['frames']} frames in {time.perf_counter() - t0:.1f} s; flagged {counts['flagged']}, "
          f"skipped {counts['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
