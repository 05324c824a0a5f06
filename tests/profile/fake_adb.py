"""FAKE adb, for tests only: there is no Android phone on this machine.

The tests copy this file to a folder as an executable named ``adb`` and put that
folder first on PATH. It understands the few commands edgekit uses: get-state,
push (copies into $FAKE_ADB_ROOT), and shell (getprop/cat facts, mkdir/chmod,
and benchmark_model, for which it prints the recorded output in $FAKE_ADB_OUTPUT
after checking that the model and binary were really pushed). Every call is
logged as a JSON line to $FAKE_ADB_LOG. edgekit starts benchmark_model as
``echo EDGEKIT-PID $$ >&2; exec ...``: the fake prints its own pid the same way, and with
$FAKE_ADB_HANG set it hangs there instead of answering (to test --timeout and Ctrl-C).
"""

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(os.environ["FAKE_ADB_ROOT"])
SERIAL = os.environ.get("FAKE_ADB_SERIAL", "fake-phone")
FACTS = {"manufacturer": "FakeVendor", "model": "Fake Phone 1", "soc": "FakeSoC", "abi": "arm64-v8a",
         "android": "14", "cpus": "0-7", "governor": "schedutil", "temp": "41000"}


def on_device(path: str) -> Path:
    return ROOT / path.lstrip("/")


def main(argv):
    with open(os.environ["FAKE_ADB_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    if argv[:1] == ["-s"]:
        serial, argv = argv[1], argv[2:]
        if serial != SERIAL:
            print(f"adb: device '{serial}' not found", file=sys.stderr)
            return 1
    cmd, args = argv[0], argv[1:]
    if cmd == "get-state":
        print("device")
    elif cmd == "push":
        dest = on_device(args[1])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args[0], dest)
        print(f"{args[0]}: 1 file pushed")
    elif cmd == "shell":
        line = " ".join(args)
        if line.startswith("echo EDGEKIT-PID $$ >&2; exec "):
            print(f"EDGEKIT-PID {os.getpid()}", file=sys.stderr, flush=True)
            line = line.split("; exec ", 1)[1]
            if os.environ.get("FAKE_ADB_HANG"):
                import time

                while True:
                    time.sleep(3600)
        if line.startswith("kill -9 "):
            return 0  # the phone's kill: logged above, which is what the tests check
        if "benchmark_model" in line and "--graph=" in line:
            graph = line.split("--graph=")[1].split()[0]
            binary = line.split()[0]
            if not on_device(graph).exists() or not on_device(binary).exists():
                print(f"fake adb: {graph} or {binary} was never pushed", file=sys.stderr)
                return 1
            print(Path(os.environ["FAKE_ADB_OUTPUT"]).read_text())
        elif "getprop" in line:
            for key, value in FACTS.items():
                print(f"{key}={value}")
    else:
        print(f"fake adb: unsupported command {cmd}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
