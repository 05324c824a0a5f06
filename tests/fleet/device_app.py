"""A device's app for the fleet tests: serves the device's store and feeds it real digits, like a kiosk would.

Run as its own process (one per "device"): ``python device_app.py STORE DIGITS.npz INTERVAL_S``.
It serves the store with edgekit.store.serve (the canary runs in its shadow and decides by itself)
and writes what it serves to STORE/../app-served.json after every call batch, so a test can read
what the app answers with (not only what the index says).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgekit.store import serve


def main() -> None:
    store, data, interval = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    x = np.load(data)["x"]
    served_file = store.parent / f"{store.name}.app-served.json"
    served = serve(store, canary_wait=True)  # every call compared: a canary of N calls ends after N calls
    i = 0
    while True:
        pred = served.predict(x[i % len(x)])
        i += 1
        if i % 10 == 0:
            tmp = served_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"sha256": pred._model.sha256, "calls": i}))
            os.replace(tmp, served_file)
        time.sleep(interval)


if __name__ == "__main__":
    main()
