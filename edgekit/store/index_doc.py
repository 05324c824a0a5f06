"""The store's ``index.json`` as a document: its shape (checked on every read), the changes writers
make to it, and its rebuild from the history (``edgekit status --store DIR --repair``).

Every reader trusts what ``parse`` returns: a field of the wrong type is refused here in one line
(naming the field and saying how to repair), never met later as a KeyError or TypeError. ``activate``,
``stage`` and ``reject`` are the only ways an index changes; ``replay`` applies them to the events of
``events.jsonl`` in order, so the rebuilt index is the one the writers had built.

Example:
    >>> idx = activate(empty_index(), "a" * 64, "deploy", "deployed", when="t0", keep=3)
    >>> idx = activate(idx, "b" * 64, "deploy", "deployed", when="t1", keep=3)
    >>> idx["active"]["sha256"][:4], [s[:4] for s in idx["good"]]
    ('bbbb', ['aaaa'])
    >>> try:
    ...     parse(b'{"schema": "edgekit.store/1", "generation": "7"}', "index.json")
    ... except StoreError as err:
    ...     print(str(err).split(";")[0])
    index.json: field 'generation' is "7", not a count (0 or more)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from ..errors import StoreError, UsageError
from .canary import Budgets
from .layout import SCHEMA, empty_index

MAX_BYTES = 1 << 20  # an index names a handful of versions: a larger file is damage, not an index
MAX_BAD = 20  # bad marks kept in the index (the history keeps them all)
SHA256 = re.compile(r"[0-9a-f]{64}\Z")

# ---- the shape -------------------------------------------------------------------------------------


def _is_sha(v: Any) -> bool:
    return isinstance(v, str) and SHA256.match(v) is not None  # also keeps "../" out of objects/ paths


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _is_shas(v: Any) -> bool:
    return isinstance(v, list) and all(_is_sha(s) for s in v)


def _is_plan(v: Any) -> bool:
    """A canary plan: null, or {calls, minutes, budgets} with numbers Budgets accepts."""
    if v is None:
        return True
    if not isinstance(v, dict) or not (_is_number(v.get("calls")) and _is_number(v.get("minutes"))):
        return False
    budgets = v.get("budgets")
    if budgets is None:
        return True
    if not isinstance(budgets, dict) or not all(_is_number(b) for b in budgets.values()):
        return False
    try:
        Budgets.from_dict(budgets)
    except UsageError:
        return False
    return True


Rule = tuple[Callable[[Any], bool], str]
_TEXT: Rule = (lambda v: isinstance(v, str), "a string")
_SHA: Rule = (_is_sha, "a sha256 (64 hex digits)")
# A nested dict is a record that may also be null. Optional, checked in ``problem``: "trust", the key
# files a store recorded (``edgekit deploy --trust``), and "evidence", the rule of ``--require-evidence``.
FIELDS: dict[str, Any] = {
    "generation": (_is_count, "a count (0 or more)"),
    "active": {"sha256": _SHA, "activated": _TEXT, "via": _TEXT, "reason": _TEXT},
    "good": (_is_shas, "a list of sha256s"),
    "candidate": {"sha256": _SHA, "staged": _TEXT, "canary": (_is_plan, "null or a canary plan")},
    "bad": (_is_shas, "a list of sha256s"),
    "last_event": {"generation": (_is_count, "a count (0 or more)")},
}


def _show(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def problem(value: Any, fields: dict[str, Any] = FIELDS, where: str = "") -> str | None:
    """What is wrong with an index (or one of its records), in a few words; None when nothing is."""
    if not isinstance(value, dict):
        return f"holds {_show(value)}, not an object"
    if not where and value.get("schema") != SCHEMA:
        return f"schema {_show(value.get('schema'))} is not {SCHEMA!r}"
    for key, rule in fields.items():
        name = where + key
        if key not in value:
            return f"has no {name!r} field"
        v = value[key]
        if isinstance(rule, dict):
            if v is not None:
                if not isinstance(v, dict):
                    return f"field {name!r} is {_show(v)}, not null or an object"
                found = problem(v, rule, name + ".")
                if found:
                    return found
        elif not rule[0](v):
            return f"field {name!r} is {_show(v)}, not {rule[1]}"
    if not where and "trust" in value and not (isinstance(value["trust"], list)
                                               and all(isinstance(k, str) for k in value["trust"])):
        return f"field 'trust' is {_show(value['trust'])}, not a list of key file names"
    ev = value.get("evidence") if not where else None
    if ev is not None and not (isinstance(ev, dict) and ev.get("required") is True
                               and (ev.get("target") is None or isinstance(ev.get("target"), str))):
        return f"field 'evidence' is {_show(ev)}, not null or {{required: true, target}}"
    return None


def damaged(path: str | Path, what: str) -> StoreError:
    path = Path(path)
    return StoreError(f"{path}: {what}; a running server keeps its loaded version; rebuild the index from the stored "
                      f"versions and the history: edgekit status --store {path.parent} --repair")


def parse(raw: bytes, path: str | Path) -> dict[str, Any]:
    """The index in ``raw`` (the bytes of ``path``), or a one-line StoreError saying what is wrong."""
    idx, found = diagnose(raw)
    if found:
        raise damaged(path, found)
    return idx


def diagnose(raw: bytes) -> tuple[Any, str | None]:
    """(the index, None), or (None, what is wrong with ``raw`` in a few words)."""
    if len(raw) > MAX_BYTES:
        return None, f"{len(raw)} bytes, not an index (at most {MAX_BYTES})"
    try:
        idx = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        return None, "not valid JSON (truncated or changed by hand)"
    found = problem(idx)
    return (None, found) if found else (idx, None)


# ---- the changes writers make --------------------------------------------------------------------


def active_sha(idx: dict[str, Any]) -> str | None:
    return (idx.get("active") or {}).get("sha256")


def named(idx: dict[str, Any]) -> set[str]:
    """The versions an index keeps on disk: active, candidate, good (bad ones are only marks)."""
    return {s for s in [active_sha(idx), (idx.get("candidate") or {}).get("sha256"), *idx.get("good", [])] if s}


def activate(idx: dict[str, Any], sha: str, via: str, reason: str, *, when: str, keep: int,
             demote: bool = False) -> dict[str, Any]:
    """``sha`` active; the old active version becomes the newest good one (or bad, with ``demote``)."""
    old = active_sha(idx)
    good = [s for s in idx["good"] if s not in (sha, old)]
    bad = [s for s in idx["bad"] if s != sha]
    if old and old != sha:
        (bad if demote else good).insert(0, old)
    cand = idx["candidate"]
    return dict(idx, active={"sha256": sha, "activated": when, "via": via, "reason": reason},
                good=good[:keep], bad=bad[:MAX_BAD], candidate=None if cand and cand["sha256"] == sha else cand)


def stage(idx: dict[str, Any], sha: str, plan: dict[str, Any] | None, *, when: str) -> dict[str, Any]:
    return dict(idx, candidate={"sha256": sha, "staged": when, "canary": plan})


def reject(idx: dict[str, Any], sha: str) -> dict[str, Any]:
    return dict(idx, candidate=None, bad=([sha] + [s for s in idx["bad"] if s != sha])[:MAX_BAD])


# ---- the rebuild ---------------------------------------------------------------------------------

VIA = {"activate": "deploy", "promote": "promote", "rollback": "rollback", "repair": "repair"}


def replay(events: list[Any], keep: int) -> dict[str, Any]:
    """The index the writers built, from the history's events in order (unreadable events are skipped).

    The generation is the last one recorded, so the next write continues the history's count.
    """
    idx = empty_index()
    for ev in events:
        if isinstance(ev, dict) and ev.get("event") == "trust" and isinstance(ev.get("key"), str):
            # the keys a store was deployed with: a rebuilt index must not go back to unsigned
            idx["trust"] = [k for k in idx.get("trust", []) if k != ev["key"]] + [ev["key"]]
            continue
        if isinstance(ev, dict) and ev.get("event") == "require-evidence":
            # nor back to taking bare models (edgekit deploy --require-evidence)
            target = ev.get("target")
            idx["evidence"] = {"required": True, "target": target if isinstance(target, str) else None}
            continue
        if not isinstance(ev, dict) or not _is_sha(ev.get("sha256")):
            continue
        sha, kind, when = ev["sha256"], ev.get("event"), str(ev.get("time", ""))
        if kind in VIA and sha != active_sha(idx):
            idx = activate(idx, sha, VIA[kind], str(ev.get("reason", "")), when=when, keep=keep,
                           demote=kind == "rollback")
        elif kind == "stage":
            plan = ev.get("canary")
            idx = stage(idx, sha, plan if _is_plan(plan) else None, when=when)
        elif kind == "reject":
            idx = reject(idx, sha)
        if _is_count(ev.get("generation")):
            idx["generation"] = max(idx["generation"], ev["generation"])
    return idx


def reconcile(idx: dict[str, Any], verified: list[str], when: str) -> dict[str, Any]:
    """Keep only versions on disk that verify (``verified``: newest first); pick an active one if needed.

    An active version the history names but the disk lacks is replaced by the newest good one that
    verifies, else by the newest stored version not marked bad (via "repair").
    """
    ok = set(verified)
    good = [s for s in idx["good"] if s in ok]
    cand = idx["candidate"] if idx["candidate"] and idx["candidate"]["sha256"] in ok else None
    active = idx["active"] if active_sha(idx) in ok else None
    if active is None:
        lost = active_sha(idx)
        spare = [s for s in verified if s not in idx["bad"] and s not in good and s != (cand or {}).get("sha256")]
        pick = (good or spare or [None])[0]
        if pick is not None:
            # with no good one (no history), every other stored version is named: none is lost unnamed
            good = [s for s in good if s != pick] if good else spare[1:]
            why = f"history's active {lost[:12]} is not stored intact" if lost else "no active version in the history"
            active = {"sha256": pick, "activated": when, "via": "repair", "reason": f"chosen by repair: {why}"}
    return dict(idx, active=active, good=good, candidate=cand)
