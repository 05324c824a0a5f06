"""``edgekit fleet incidents``: pull each device's new incident records, archive them, group them.

State lives in the output folder::

    DIR/incidents.jsonl   the archive: every record pulled, with "device" added (appended)
    DIR/cursors.json      per device the cursor of its log (edgekit.store.incident_pull), and the archive's size
    DIR/report.json       the last pull: per device pulled / lost / dropped, groups over the whole archive
    DIR/report.html       the same for people

A pull commits in one step: the archive is first cut back to the size cursors.json recorded (a run
stopped after appending but before saving its cursors leaves no duplicate), records are appended
and fsynced, then cursors.json is replaced atomically. A device that fails keeps its cursor.

Example:
    >>> doc = pull_fleet(load_inventory("fleet.toml"), "incidents/")       # doctest: +SKIP
    >>> doc["devices"][0]["pulled"], doc["devices"][0]["lost"]             # doctest: +SKIP
    (120, 0)
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import UsageError
from ..fsutil import atomic_write_text
from .gather import Answer, ask_all, local_store
from .inventory import Device, Inventory

ARCHIVE = "incidents.jsonl"
CURSORS = "cursors.json"
SCHEMA = "edgekit.fleet-incidents/1"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(text: str | None, now: float | None = None) -> str | None:
    """``--since``: an ISO time (2026-12-06T08:00) or an age (30m, 2h, 1d) -> the ISO string records compare to.

    Example:
        >>> parse_since("2h", now=7200.0)
        '1970-01-01T00:00:00.000Z'
    """
    if text is None:
        return None
    m = _DURATION.match(text.strip())
    if m:
        secs = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        t = (time.time() if now is None else now) - secs
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    if re.match(r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?Z?$", text.strip()):
        return text.strip().rstrip("Z")
    raise UsageError(f"--since {text!r}: give an ISO time (2026-12-06T08:00) or an age (30m, 2h, 1d)")


def input_of(rec: dict[str, Any]) -> str:
    """Which input (or the output side) an incident is about, from its reason and input summary."""
    reason = str(rec.get("reason", ""))
    m = re.search(r"calibration data \(([^)]*)\)", reason)
    if m:
        return m.group(1)
    if reason.startswith("output unlike") or rec.get("kind") == "output":
        return "(output)"
    summary = rec.get("input")
    if isinstance(summary, dict) and summary and all(isinstance(v, dict) for v in summary.values()):
        return ", ".join(summary)
    return "(input)" if summary is not None else "-"


def bucket_of(rec: dict[str, Any], minutes: int) -> str:
    t = str(rec.get("time", ""))
    if len(t) < 16:
        return "-"
    if minutes >= 1440:
        return t[:10]
    hh, mm = int(t[11:13]), int(t[14:16])
    start = (hh * 60 + mm) // minutes * minutes
    return f"{t[:10]}T{start // 60:02d}:{start % 60:02d}"


def group(records: Iterable[dict[str, Any]], bucket_minutes: int = 60) -> dict[str, Any]:
    """Counts by kind, model version, input, time bucket, device, and by (device, kind, version, input)."""
    by: dict[str, Counter] = {k: Counter() for k in ("kind", "version", "input", "time", "device", "action")}
    combo: Counter = Counter()
    n = 0
    for rec in records:
        n += 1
        ver = str(rec.get("model_sha256") or "-")[:12]
        inp = input_of(rec)
        dev = str(rec.get("device", "-"))
        by["kind"][rec.get("kind", "-")] += 1
        by["version"][ver] += 1
        by["input"][inp] += 1
        by["time"][bucket_of(rec, bucket_minutes)] += 1
        by["device"][dev] += 1
        by["action"][rec.get("action", "-")] += 1
        combo[(dev, rec.get("kind", "-"), ver, inp)] += 1
    out: dict[str, Any] = {"records": n, "bucket_minutes": bucket_minutes}
    for k, c in by.items():
        out[f"by_{k}"] = dict(sorted(c.items())) if k == "time" else dict(c.most_common())
    out["top"] = [{"device": d, "kind": k, "version": v, "input": i, "count": c}
                  for (d, k, v, i), c in combo.most_common(20)]
    return out


def read_archive(path: Path) -> list[dict[str, Any]]:
    from ..store.layout import read_lines

    return read_lines(path)


def _load_state(folder: Path) -> dict[str, Any]:
    p = folder / CURSORS
    if not p.exists():
        return {"archive_bytes": 0, "devices": {}}
    try:
        state = json.loads(p.read_text())
        if isinstance(state, dict) and isinstance(state.get("devices"), dict):
            return state
    except (OSError, ValueError):
        pass
    raise UsageError(f"{p}: not a cursor file edgekit wrote; move it away to pull everything again")


def _append(archive: Path, committed: int, lines: list[bytes]) -> int:
    """Cut the archive back to ``committed`` bytes, append ``lines``, fsync; returns the new size."""
    fd = os.open(archive, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size < committed:
            raise UsageError(f"{archive}: shorter than {CURSORS} says ({size} < {committed} bytes): the archive was "
                             "cut by hand; move both away to pull everything again")
        os.ftruncate(fd, committed)  # a run that appended but did not save its cursors
        os.lseek(fd, committed, os.SEEK_SET)
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        return committed + len(data)
    finally:
        os.close(fd)


def pull_fleet(inv: Inventory, out: str | Path, *, since: str | None = None, timeout_s: float = 60.0,
               bucket_minutes: int = 60, on_done: Callable[[Answer], None] | None = None,
               log_of: Callable[[Device], Path] | None = None) -> dict[str, Any]:
    """Pull every device's new records into ``out``; returns the report (also written as report.json/html).

    ``log_of``: the incident log of a "local" device (default: its store's incidents.jsonl)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    state = _load_state(folder)
    cursors = state["devices"]
    since_iso = parse_since(since)

    def args(dev: Device) -> list[str]:
        a = ["incidents", "--store", dev.store]
        if cursors.get(dev.name):
            a += ["--cursor", json.dumps(cursors[dev.name], separators=(",", ":"))]
        return a + (["--since", since_iso] if since_iso else [])

    def local(dev: Device) -> dict[str, Any]:
        from ..store import ops
        from ..store.incident_pull import pull

        if log_of is not None:
            return pull(log_of(dev), cursors.get(dev.name), since=since_iso)
        return ops.pull_incidents(local_store(dev), cursors.get(dev.name), since=since_iso)

    t0 = time.monotonic()
    answers = ask_all(inv, args, timeout_s=timeout_s, local=local, on_done=on_done)
    lines: list[bytes] = []
    rows = []
    for ans in answers:
        row: dict[str, Any] = {"name": ans.device.name, "host": ans.device.target, "ring": ans.device.ring}
        if not ans.ok:
            row.update(ok=False, error=ans.error, pulled=0)
        else:
            doc = ans.doc or {}
            recs = doc.get("records") or []
            for rec in recs:
                lines.append((json.dumps(dict(rec, device=ans.device.name), default=str) + "\n").encode("utf-8"))
            cursors[ans.device.name] = doc.get("cursor")
            row.update(ok=True, pulled=len(recs), lost=doc.get("lost", 0), unreadable=doc.get("unreadable", 0),
                       device_dropped_total=doc.get("device_dropped_total", 0),
                       device_dropped_since=doc.get("device_dropped_since", 0),
                       by_kind=dict(Counter(r.get("kind", "-") for r in recs)))
        rows.append(row)
    archive = folder / ARCHIVE
    state["archive_bytes"] = _append(archive, int(state.get("archive_bytes") or 0), lines)
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_text(folder / CURSORS, json.dumps(state, indent=1) + "\n")  # the commit point
    doc = {"schema": SCHEMA, "inventory": str(inv.path), "out": str(folder), "elapsed_s":
           round(time.monotonic() - t0, 3), "since": since_iso, "devices": rows,
           "pulled": sum(r["pulled"] for r in rows), "lost": sum(r.get("lost", 0) for r in rows),
           "failed": [r["name"] for r in rows if not r["ok"]], "archive": str(archive),
           "groups_new": group((json.loads(b) for b in lines), bucket_minutes),
           "groups_archive": group(read_archive(archive), bucket_minutes)}
    write_reports(doc, folder)
    return doc


def local_log(path: str | Path, *, since: str | None = None, bucket_minutes: int = 60,
              out: str | Path | None = None) -> dict[str, Any]:
    """``edgekit incidents FILE``: group one local log (with its rotated backups and dropped count).

    With ``out`` it works like a one-device fleet: a cursor, an archive, only new records each time."""
    from ..store.incident_pull import pull

    p = Path(path)
    if p.is_dir():
        p = p / "incidents.jsonl"  # a store folder
    if not p.is_file():
        raise UsageError(f"{path}: no incident log there (a .jsonl file, or a store folder with incidents.jsonl)")
    since_iso = parse_since(since)
    if out is None:
        res = pull(p, None, since=since_iso)
        recs = [dict(r, device="local") for r in res["records"]]
        return {"schema": SCHEMA, "log": str(p), "since": since_iso, "pulled": len(recs),
                "device_dropped_total": res["device_dropped_total"], "unreadable": res["unreadable"],
                "groups_new": group(recs, bucket_minutes)}
    inv = Inventory(p, (Device(name="local", host="local", store=str(p.parent)),))
    return pull_fleet(inv, out, since=since, bucket_minutes=bucket_minutes, log_of=lambda dev: p)


def write_reports(doc: dict[str, Any], folder: Path) -> None:
    atomic_write_text(folder / "report.json", json.dumps(doc, indent=1, default=str) + "\n")
    atomic_write_text(folder / "report.html", render_html(doc))


FIELDS = ("kind", "version", "input", "device", "time")  # the groups shown, in this order


def _group_sets(doc: dict[str, Any], titles: tuple[str, str]):
    """(title, groups) of the new records and of the archive, those with records only."""
    for title, key in zip(titles, ("groups_new", "groups_archive")):
        g = doc.get(key)
        if g and g["records"]:
            yield title, g


def render(doc: dict[str, Any]) -> str:
    lines = []
    if "devices" in doc:
        lines.append(f"pulled {doc['pulled']} new incident record(s) from {len(doc['devices'])} device(s) in "
                     f"{doc['elapsed_s']:.2f} s into {doc['archive']}")
        for r in doc["devices"]:
            if not r["ok"]:
                lines.append(f"  {r['name']:16} FAILED: {r['error']}")
                continue
            kinds = ", ".join(f"{k} {n}" for k, n in r["by_kind"].items()) or "nothing new"
            extra = f"; LOST {r['lost']} (rotated out or dropped before this pull)" if r["lost"] else ""
            lines.append(f"  {r['name']:16} {r['pulled']:6} new ({kinds}); the device dropped "
                         f"{r['device_dropped_total']} in all{extra}")
    else:
        lines.append(f"{doc['log']}: {doc['pulled']} record(s); the log dropped {doc['device_dropped_total']}")
    for title, g in _group_sets(doc, ("new", "archive")):
        lines.append(f"{title}: {g['records']} record(s)")
        for field in FIELDS:
            items = list(g[f"by_{field}"].items())
            shown = ", ".join(f"{k} {n}" for k, n in items[-12:] if field == "time") if field == "time" else \
                ", ".join(f"{k} {n}" for k, n in items[:8])
            lines.append(f"  by {field:8} {shown}")
    if doc.get("failed"):
        lines.append("failed: " + ", ".join(doc["failed"]))
    return "\n".join(lines)


def render_html(doc: dict[str, Any]) -> str:
    from ..profile.report import CSS, _table

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgekit fleet incidents</title>"
             f"<style>{CSS}</style></head><body><h1>Incidents: {html.escape(str(doc.get('inventory')))}</h1>"]
    if doc.get("devices"):
        parts.append("<h2>This pull</h2>" + _table(
            ["device", "ok", "new", "lost", "device dropped (all)", "error"],
            [[r["name"], r["ok"], r["pulled"], r.get("lost", "-"), r.get("device_dropped_total", "-"),
              r.get("error", "")] for r in doc["devices"]]))
    for title, g in _group_sets(doc, ("New records", "Whole archive")):
        parts.append(f"<h2>{title}: {g['records']}</h2>")
        for field in FIELDS:
            parts.append(f"<h3>by {field}</h3>" + _table([field, "records"], list(g[f"by_{field}"].items())))
        parts.append("<h3>top groups</h3>" + _table(["device", "kind", "version", "input", "records"],
                                                    [[t["device"], t["kind"], t["version"], t["input"], t["count"]]
                                                     for t in g["top"]]))
    parts.append("</body></html>\n")
    return "".join(parts)
