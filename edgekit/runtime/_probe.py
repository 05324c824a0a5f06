"""The probe process: load, allocate and invoke model bytes once, so a crash happens here.

Run by safeload: ``python -m edgekit.runtime._probe BACKEND DELEGATES < model.tflite``.
Exit 0: loaded and ran; exit 3: refused, with the reason on stdout. Any signal death is
the parent's verdict "crashed". Imports only numpy and the interpreter package.
"""

from __future__ import annotations

import sys


def main() -> int:
    from edgekit.errors import EdgekitError
    from edgekit.runtime.safeload import open_checked

    backend = None if sys.argv[1] == "auto" else sys.argv[1]
    delegates = {"auto": None, "on": True, "off": False}[sys.argv[2]]
    data = sys.stdin.buffer.read()
    try:
        interp = open_checked(data, num_threads=1, backend=backend, delegates=delegates)
    except EdgekitError as err:
        print(str(err).replace("<bytes>: ", ""))
        return 3
    except Exception as err:  # anything else the interpreter raises on a bad graph
        print(f"{type(err).__name__}: {' '.join(str(err).split())}"[:300])
        return 3
    print("ok" if getattr(interp, "edgekit_default_delegates", True) else "ok-nodelegates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
