"""A small HTTP prediction service around EdgeModel, on the standard library only.

    POST /predict   body: an encoded image (PNG, JPEG, ...), JSON {"input": [[...]]}, or for a model
                    with several inputs JSON {"inputs": {"image": [...], "features": [...]}}
                    -> {"top_k": [[label, p], ...], "ok": true, "sources": ["model"], "checks": [...]}
    GET  /health    -> model.health(): rolling stats, drift, incidents, shadow agreement
    GET  /incidents -> the most recent incident records

Bad input answers 400 with the guard's one-line message; a model failure answers 503. Nothing
a client sends is dropped silently: every request gets a prediction or an error.

Threads: ThreadingHTTPServer runs each request on its own thread; EdgeModel is thread-safe
(``--pool`` interpreters, default 2, so two requests run the model at the same time).

Run:
    python examples/http_service.py digits-int8.tflite --fallback digits-fp32.tflite --port 8080
    curl --data-binary @seven.png http://127.0.0.1:8080/predict
    curl -d '{"input": [[0.0, 0.1, ...]]}' http://127.0.0.1:8080/predict
    curl http://127.0.0.1:8080/health
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edgekit.errors import EdgekitError, InputValidationError
from edgekit.runtime import EdgeModel, Policy

MAX_BODY = 10 * 1024 * 1024  # refuse request bodies over 10 MB before reading them


def make_handler(model: EdgeModel):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload) -> None:
            body = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                self._send(200, model.health())
            elif self.path == "/incidents":
                self._send(200, model.incidents()[-100:])
            else:
                self._send(404, {"error": "try POST /predict, GET /health or GET /incidents"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/predict":
                self._send(404, {"error": "POST /predict"})
                return
            size = int(self.headers.get("Content-Length") or 0)
            if size <= 0 or size > MAX_BODY:
                self._send(400, {"error": f"body must be 1 byte to {MAX_BODY:,} bytes, got {size:,}"})
                return
            body = self.rfile.read(size)
            try:
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    try:
                        doc = json.loads(body)
                        data = doc["inputs"] if "inputs" in doc else doc["input"]
                        if not isinstance(data, (list, dict)):
                            raise TypeError
                    except (ValueError, KeyError, TypeError):
                        raise InputValidationError('JSON body must be {"input": [...]} or '
                                                   '{"inputs": {name: [...], ...}}') from None
                else:
                    data = body  # encoded image bytes: the runtime decodes them with a pixel limit
                pred = model.predict(data)
            except InputValidationError as err:
                self._send(400, {"error": str(err)})
                return
            except EdgekitError as err:  # invoke or output failure the policy chose to raise
                self._send(503, {"error": str(err)})
                return
            self._send(200, pred.to_dict(k=3))

        def log_message(self, fmt, *args) -> None:  # keep stdout for the startup line
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    return Handler


def serve(model_path: str, fallback: str | None, host: str, port: int, pool: int,
          incident_log: str | None) -> ThreadingHTTPServer:
    """Load the model and return a started-but-not-serving server (call serve_forever())."""
    model = EdgeModel.load(model_path, fallback=fallback, pool_size=pool, incident_log=incident_log,
                           policy=Policy(on_ood="fallback" if fallback else "allow"))
    server = ThreadingHTTPServer((host, port), make_handler(model))
    server.model = model  # for callers that want health() without HTTP
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description="Serve an edgekit model over HTTP.")
    ap.add_argument("model")
    ap.add_argument("--fallback")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--pool", type=int, default=2, help="interpreters, i.e. requests run at once")
    ap.add_argument("--incident-log", default="incidents.jsonl")
    args = ap.parse_args()
    try:
        server = serve(args.model, args.fallback, args.host, args.port, args.pool, args.incident_log)
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"serving {args.model} on http://{args.host}:{server.server_address[1]} (POST /predict, GET /health)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
