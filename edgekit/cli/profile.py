"""``edgekit profile``: latency and memory of a .tflite model here, over SSH or on a phone over adb."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def profile(
    model: Path = typer.Argument(..., help="the .tflite model"),
    runs: int = typer.Option(200, "--runs", help="timed runs per thread count"),
    warmup: int = typer.Option(20, "--warmup", help="untimed runs first"),
    threads: Optional[str] = typer.Option(None, "--threads", help="thread counts, e.g. 1,2,4 (one row each); "
                                          "default 1, or the --target profile's"),
    input: List[str] = typer.Option([], "--input", help="'random' (default), FILE.npz (arrays named by input) "
                                    "or NAME=FILE.npy; repeatable; inputs without data get random data"),
    target: Optional[str] = typer.Option(None, "--target", help="device profile whose budgets to check"),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="p95 budget (overrides --target)"),
    max_memory_mb: Optional[float] = typer.Option(None, "--max-memory-mb", help="peak memory budget"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the result (edgekit.profile/1) here"),
    report: Optional[Path] = typer.Option(None, "--report", help="write an HTML report with plots here"),
    host: List[str] = typer.Option([], "--host", help="user@host to profile on over SSH (repeatable, parallel)"),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="identity file for ssh"),
    ssh_port: Optional[int] = typer.Option(None, "--ssh-port", help="ssh port"),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config", help="ssh config file (ssh -F)"),
    ssh_option: List[str] = typer.Option([], "--ssh-option", help="extra ssh -o KEY=VALUE (repeatable)"),
    remote_python: str = typer.Option("python3", "--remote-python", help="python with numpy and ai-edge-litert "
                                      "on the device"),
    remote_dir: Optional[str] = typer.Option(None, "--remote-dir", help="where the model is copied on the device "
                                             "(default ~/.cache/edgekit/profile)"),
    adb: Optional[str] = typer.Option(None, "--adb", help="Android phone serial (see adb devices)"),
    benchmark_binary: Optional[Path] = typer.Option(None, "--benchmark-binary", help="LiteRT benchmark_model "
                                                    "built for the phone (with --adb)"),
    per_op: bool = typer.Option(False, "--per-op", help="per-op timings (benchmark_model on --adb)"),
    interpreter: Optional[str] = typer.Option(None, "--interpreter", help="ai-edge-litert, tflite-runtime or "
                                              "tensorflow (default: the first installed)"),
    delegate: Optional[str] = typer.Option(None, "--delegate", help="external delegate library by name or path, "
                                           "e.g. libedgetpu.so.1 (on the device with --host)"),
    delegate_option: List[str] = typer.Option([], "--delegate-option", help="KEY=VALUE for the delegate, e.g. "
                                              "device=usb (repeatable)"),
    signature: Optional[str] = typer.Option(None, "--signature", help="the signature to run, by name "
                                            "(default: the main graph)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds each process (a copy, one thread "
                                            "count's run) may take before it is killed, here and on the device "
                                            "(default 600)"),
) -> None:
    """Measure load time, latency percentiles and memory in a fresh process; check budgets.

    Example: edgekit profile digits-int8.tflite --threads 1,2 --target raspberry-pi-4 --json out.json --report out.html

    Several inputs: --input image=img.npy --input features=feat.npy, or --input data.npz.

    On an Edge TPU: edgekit profile m_edgetpu.tflite --host pi@coral --delegate libedgetpu.so.1 --delegate-option device=usb
    """
    from ..errors import UsageError
    from ..profile import dispatch, render
    from ..profile.profiler import check_load

    if host and adb:
        raise UsageError("use --host or --adb, not both")
    if threads is None and target:
        from ..devices import load_profile

        threads = str(load_profile(target).threads)
    load = check_load(delegate, delegate_option, signature)
    bar = render.ProgressBar()
    try:
        outcome = dispatch.run(model, runs=runs, warmup=warmup, threads=threads, input=input or None,
                               backend=interpreter, hosts=host,
                               ssh=dict(key=ssh_key, port=ssh_port, config=ssh_config, options=list(ssh_option),
                                        python=remote_python, remote_dir=remote_dir),
                               adb=adb, benchmark_binary=benchmark_binary, per_op=per_op, on_progress=bar,
                               timeout_s=timeout, load=load)
    finally:
        bar.close()
    dispatch.publish(outcome.docs, target=target, max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb,
                     json_out=json_out, report_out=report, several=len(host) > 1)
    if outcome.docs:
        typer.echo("\n\n".join(render.summary(doc) for doc in outcome.docs))
    for line in dispatch.failure_lines(outcome):
        typer.echo(line, err=True)
    dispatch.enforce(outcome)


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
