"""Terminal output: the profile summary and the progress bar (stderr).

Example:
    >>> doc = load_result("digits-int8.json")      # doctest: +SKIP
    >>> print(summary(doc))                         # doctest: +SKIP
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO


def fmt_ms(v: float | None) -> str:
    """3 significant figures, so 0.0213 and 123 both read well."""
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def fmt_mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def machine_line(m: dict[str, Any]) -> str:
    parts = [m.get("cpu_model") or "unknown CPU", f"{m.get('cores') or '?'} cores"]
    if m.get("governor"):
        parts.append(f"governor {m['governor']}")
    temps = m.get("temperature_c") or {}
    if temps:
        parts.append("temp " + ", ".join(f"{v:.0f} C" for v in list(temps.values())[:2]))
    thr = m.get("throttling")
    if thr and thr.get("flags") is not None:
        parts.append("throttling: " + (", ".join(thr["flags"]) or "none"))
    return ", ".join(parts)


def load_init_ms(timing: dict[str, Any]) -> float | None:
    """Interpreter creation plus allocate_tensors (benchmark_model reports only their sum, as init)."""
    parts = [timing.get(k) for k in ("load_ms", "init_ms") if timing.get(k) is not None]
    return sum(parts) if parts else None


_COLUMNS = ("threads", "load+init", "first", "min", "p50", "p90", "p95", "p99", "max", "mean", "std", "inf/s",
            "peak MB", "USS MB")


def _row_cells(row: dict[str, Any]) -> list[str]:
    t, lat, mem = row.get("timing", {}), row["latency_ms"], row["memory"]
    init = load_init_ms(t)
    tp = row.get("throughput_per_s")
    return [str(row["threads"]), fmt_ms(init), fmt_ms(t.get("first_inference_ms")),
            *(fmt_ms(lat.get(k)) for k in ("min", "p50", "p90", "p95", "p99", "max", "mean", "std")),
            fmt_ms(tp), fmt_mb(mem.get("peak_mb")), fmt_mb(mem.get("uss_mb"))]


def table(header: list[str] | tuple[str, ...], rows: list[list[str]], text_last: bool = False) -> str:
    """Left-aligned first column (and last, when it is text), right-aligned numbers."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    n = len(widths)
    lines = []
    for cells in [list(header), *rows]:
        out = [str(c).ljust(w) if i == 0 or (text_last and i == n - 1) else str(c).rjust(w)
               for i, (c, w) in enumerate(zip(cells, widths))]
        lines.append("  ".join(out).rstrip())
    return "\n".join(lines)


def _memory_line(mem: dict[str, Any]) -> str:
    if "start_rss_mb" not in mem:  # benchmark_model (adb): only its own figures
        return (f"memory MB ({mem.get('source', 'device')}): peak {fmt_mb(mem.get('peak_mb'))}, "
                f"delta from the tool's start {fmt_mb(mem.get('footprint_delta_mb'))}")
    bits = [f"start {fmt_mb(mem.get('start_rss_mb'))}", f"+numpy+interpreter {fmt_mb(mem.get('baseline_rss_mb'))}",
            f"after load {fmt_mb(mem.get('after_load_rss_mb'))}",
            f"peak {fmt_mb(mem.get('peak_mb'))} (sampled {fmt_mb(mem.get('peak_rss_sampled_mb'))}, "
            f"ru_maxrss {fmt_mb(mem.get('ru_maxrss_mb'))})"]
    if mem.get("uss_mb") is not None:
        bits.append(f"USS {fmt_mb(mem['uss_mb'])}, PSS {fmt_mb(mem.get('pss_mb'))}")
    return "memory MB (RSS): " + ", ".join(bits)


def _per_op_lines(row: dict[str, Any], top: int = 8) -> list[str]:
    per = row.get("per_op") or {}
    if not per.get("available"):
        return [f"per-op timings: not available: {per.get('reason') or 'not measured'}"]
    ops = sorted(per.get("ops", []), key=lambda o: -(o.get("avg_ms") or 0))[:top]
    lines = [f"per-op timings ({row['threads']} threads, top {len(ops)} by average):"]
    lines += [f"  {o.get('avg_ms', 0):8.3f} ms {o.get('percent') or 0:5.1f}%  {o['type']:<24} {o.get('name', '')}"
              for o in ops]
    return lines


def verdict(budget: dict[str, Any]) -> str:
    """'PASS', 'FAIL' or 'not measured on T' (timings from another machine or an emulator)."""
    if budget.get("passed") is None:
        return f"not measured on {budget['source']}"
    return "PASS" if budget["passed"] else "FAIL"


def budget_lines(budget: dict[str, Any] | None) -> list[str]:
    if not budget:
        return []
    limits = []
    if budget.get("max_latency_ms") is not None:
        limits.append(f"p95 <= {budget['max_latency_ms']:g} ms")
    if budget.get("max_memory_mb") is not None:
        limits.append(f"peak <= {budget['max_memory_mb']:g} MB")
    src = "" if budget["source"] == "options" else f" ({budget['source']})"
    lines = [f"budget{src}: {', '.join(limits)}: {verdict(budget)}"]
    if budget.get("not_measured"):
        return lines + [f"  these timings are not from the target: {budget['not_measured']}; "
                        f"profile on the device itself (--host) for a verdict"]
    lines += [f"  {plural(r['threads'], 'thread')}: {', '.join(r['failures'])}" for r in budget["rows"]
              if not r["passed"]]
    return lines


def caveats(doc: dict[str, Any]) -> list[str]:
    """What makes these latencies less trustworthy: a busy machine, throttling during the runs."""
    out = []
    m = doc.get("machine") or {}
    load, cores = m.get("load_average"), m.get("cpu_affinity") or m.get("cores")
    if load and cores and load[0] > 0.3 * cores:
        out.append(f"note: load average {load[0]:.2f} on {cores} cores before the runs: other work competes, "
                   "so latencies are noisier and slower than on an idle device")
    if m.get("emulated"):
        out.append(f"note: emulated device ({m['emulated']}): these timings are an emulator's, never a device's "
                   "speed; behaviour (loads, runs, memory layout) is real")
    # a loaded document may hold anything (reports escape hostile values): compare only numbers
    over = [r["threads"] for r in doc["rows"]
            if isinstance(cores, int) and isinstance(r.get("threads"), int) and r["threads"] > cores]
    if over:
        out.append(f"warning: {', '.join(map(str, over))} threads on a machine with {cores} cores: threads "
                   "compete for cores, so those rows measure contention, not the model")
    for row in doc["rows"]:
        flags = ((row.get("machine_after") or {}).get("throttling") or {}).get("flags") or []
        now = [f for f in flags if f.endswith(" now")]
        if now:
            out.append(f"note: {', '.join(now)} after the {plural(row['threads'], 'thread')} runs: "
                       "cool the device or add a heatsink")
    return out


def summary(doc: dict[str, Any]) -> str:
    """The terminal summary of one profile result."""
    model, dev, st = doc["model"], doc.get("device", {}), doc.get("settings", {})
    first = doc["rows"][0]
    interp = first.get("interpreter") or {}
    where = dev.get("name") or dev.get("kind", "")
    size_kb = (model.get("size_bytes") or 0) / 1024
    lines = [
        f"{model.get('file')}  {size_kb:.1f} KB  on {where} ({dev.get('kind')}): "
        f"{machine_line(doc.get('machine') or {})}",
        f"{interp.get('package')} {interp.get('version') or ''}".rstrip() + f", {st.get('runs')} runs after {st.get('warmup')} warm-up, "
        f"input {st.get('input')}; latency in ms",
        "",
        table(_COLUMNS, [_row_cells(r) for r in doc["rows"]]),
        "",
        _memory_line(first["memory"]),
        *_per_op_lines(first),
        *caveats(doc),
        *budget_lines(doc.get("budget")),
    ]
    return "\n".join(lines)


class ProgressBar:
    """``on_progress`` callback: a redrawn bar on a TTY, a line per finished phase otherwise.

    Labels are shown side by side, so hosts profiled in parallel share one line.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self.state: dict[str, tuple[str, int, int]] = {}
        self.lock = threading.Lock()
        self.dirty = False

    def __call__(self, label: str, phase: str, done: int, total: int) -> None:
        with self.lock:
            self.state[label] = (phase, done, total)
            if self.tty:
                self.stream.write("\r" + " | ".join(self._bar(k, *v) for k, v in self.state.items()) + "\x1b[K")
                self.dirty = True
            elif done == total:
                self.stream.write(f"{label}: {phase} {done}/{total} done\n")
            self.stream.flush()

    def _bar(self, label: str, phase: str, done: int, total: int) -> str:
        filled = int(self.width * done / max(total, 1))
        return f"{label} {phase} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"

    def close(self) -> None:
        with self.lock:
            if self.dirty:
                self.stream.write("\n")
                self.stream.flush()
                self.dirty = False
