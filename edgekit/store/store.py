"""ModelStore: versioned models on the device, atomic activation, canary staging, rollback, history.

Versions are content-addressed (``objects/<sha256>/``) and written completely (every file fsynced)
under ``tmp/`` before one rename puts them in place. Which version is active is one small file,
``index.json``, replaced atomically (temp + fsync + rename + fsync of the folder), so a power cut at
any moment leaves either the old index or the new one, and both name complete versions. Readers
never lock; one writer at a time holds ``flock`` on ``lock``. On open the active version is
verified (sha256 against its folder name and its manifest, and the signature when the store trusts
keys); one that does not verify is skipped for the previous good one, and why is recorded.

Example:
    >>> store = ModelStore("/var/lib/app/models", create=True)                  # doctest: +SKIP
    >>> store.deploy("digits-int8.tflite").sha256[:12]                           # doctest: +SKIP
    '3f0c9a1b2d4e'
    >>> store.open().sha256 == store.status()["active"]["sha256"]                # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import (EdgekitError, ManifestError, MissingDependencyError, ModelLoadError, SignatureError, StoreError,
                      TamperedModelError, UsageError)
from ..fsutil import read_bytes
from ..manifest import Manifest, manifest_bytes, manifest_path_for
from ..runtime.incidents import SharedJsonl
from . import index_doc, layout
from .canary import Budgets
from .layout import Layout

KEEP = 3  # previous good versions kept on disk (older ones are removed after an activation)
CRASH_ENV = "EDGEKIT_STORE_CRASH_AT"  # tests: SIGKILL this process at the named step
STEPS = ("locked", "model-half-written", "object-written", "object-renamed", "index-written",
         "index-renamed", "event-appended")

# Tests can also set a function here (a forked child without the environment variable).
crash_hook = None


def _step(name: str) -> None:
    """A named point in a write; crash tests kill the process here (a no-op otherwise)."""
    if crash_hook is not None:
        crash_hook(name)
    elif os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), 9)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class Version:
    """One verified version in the store."""

    sha256: str
    path: Path  # objects/<sha256>/model.tflite (or model.onnx)
    signed: bool

    @property
    def manifest_path(self) -> Path:
        return manifest_path_for(self.path)


def manifest_sha256(manifest: Manifest) -> str:
    """The model digest a manifest records."""
    return manifest.model.sha256


def _os_error(err: OSError, root: Path, doing: str) -> StoreError:
    why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           errno.EROFS: "the store is on a read-only file system",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(err.errno, err.strerror)
    return StoreError(f"{root}: cannot {doing} ({why}); the active version is unchanged; "
                      "free space or fix the mount and retry")


class ModelStore:
    """A versioned model store in one folder; see the module docstring.

    trusted_keys: public keys (PEM paths) signatures must verify with; given, they pin the set (the
    store's writable ``trust/`` adds nothing to them). Else the keys of ``trust/`` that ``trust()``
    recorded in the index; a store that recorded keys and lost them all refuses (never unsigned).
    """

    def __init__(self, root: str | Path, *, create: bool = False, trusted_keys: list[str | Path] | None = None,
                 keep: int = KEEP):
        self.layout = Layout(root)
        self.root = self.layout.root
        self.keep = keep
        self._extra_keys = [Path(k) for k in trusted_keys or []]
        if create:
            try:
                for d in (self.root, self.layout.objects, self.layout.tmp):
                    d.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise _os_error(err, self.root, "create the store") from None
        elif not self.layout.objects.is_dir():
            raise StoreError(f"{self.root}: not a model store (no objects/ folder); deploy a model first: "
                             f"edgekit deploy MODEL --store {self.root}")

    # ---- reading (no lock) -------------------------------------------------
    def index(self) -> dict[str, Any]:
        """The index, every field checked (index_doc.parse); a damaged one raises StoreError naming --repair."""
        raw = self._index_bytes()
        return layout.empty_index() if raw is None else index_doc.parse(raw, self.layout.index)

    def _index_bytes(self) -> bytes | None:
        try:
            return self.layout.index.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _os_error(err, self.root, "read the index") from None

    def index_stamp(self) -> tuple[int, int, int] | None:
        """A cheap fingerprint of the index file (one stat): changes with every activation."""
        try:
            st = os.stat(self.layout.index)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def trusted_keys(self) -> list[Path]:
        """The keys signatures must verify with (empty: the store takes unsigned models); see the class.

        Raises SignatureError (and records an incident) when the store was deployed with ``--trust``
        and ``trust/`` no longer holds any of those keys: an emptied folder must not turn checks off.
        """
        if self._extra_keys:
            return list(self._extra_keys)
        keys = sorted(self.layout.trust.glob("*.pem")) if self.layout.trust.is_dir() else []
        recorded = self.rules()["trust"]
        if not recorded:  # a store from before keys were recorded: trust/ as it is
            return keys
        keys = [k for k in keys if k.name in recorded]  # a key dropped into trust/ by hand adds no trust
        if not keys:
            reason = (f"{self.layout.trust}: the store was deployed with --trust but none of its trusted keys "
                      f"({', '.join(recorded)}) is left; refusing every model rather than taking unsigned "
                      "ones; put the public key back with: edgekit deploy MODEL --store DIR --trust PUB.pem")
            self.incident("signature", reason, "refused", None)
            raise SignatureError(reason)
        return keys

    def verify(self, sha256: str) -> Version:
        """Check one stored version: files present, sha256 = folder name = manifest's, signature if trusted keys.

        Raises TamperedModelError / SignatureError / StoreError saying what is wrong.
        """
        folder = self.layout.object(sha256)
        model, man_path, sig_path = layout.files_of(folder)
        data = read_bytes(model, StoreError, f"model of version {sha256[:12]}")
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise TamperedModelError(f"{model}: sha256 {got[:12]}... is not the version's {sha256[:12]}...; "
                                     "the stored file is damaged or was changed")
        keys = self.trusted_keys()
        signed = sig_path.is_file()
        man_data = read_bytes(man_path, StoreError, f"manifest of version {sha256[:12]}")  # read once
        if keys:  # the signature first: nothing of an untrusted manifest is parsed before it verifies
            from .. import signing

            signing.verify(model, keys, manifest=man_path, signature=sig_path, data=data,
                           manifest_data=man_data)
        try:
            manifest = Manifest.from_bytes(man_data, str(man_path))  # the bytes that verified, not a re-read
        except ManifestError as err:
            raise StoreError(f"version {sha256[:12]}: {err}") from None
        if manifest_sha256(manifest) != sha256:
            raise TamperedModelError(f"{man_path}: records sha256 "
                                     f"{str(manifest_sha256(manifest))[:12]}..., not the model's {sha256[:12]}...")
        return Version(sha256, model, signed)

    def resolve(self, index: dict[str, Any] | None = None) -> tuple[Version, list[str]]:
        """The version to serve: the active one if it verifies, else the newest good one that does.

        Returns it with the problems met on the way (empty when the active version verified).
        """
        idx = index if index is not None else self.index()
        order = ([idx["active"]["sha256"]] if idx.get("active") else []) + list(idx.get("good") or [])
        problems = []
        for sha in order:
            try:
                return self.verify(sha), problems
            except (StoreError, ModelLoadError) as err:
                problems.append(f"version {sha[:12]}: {err}")
        if not order:
            raise StoreError(f"{self.root}: no model deployed yet; run: edgekit deploy MODEL --store {self.root}")
        raise StoreError(f"{self.root}: no stored version verifies ({'; '.join(problems)}); redeploy a model")

    def open(self) -> Version:
        """The verified version to serve (see resolve); a fallback is recorded as an incident."""
        version, problems = self.resolve()
        if problems:
            self.incident("store", "; ".join(problems), "serve-previous", version.sha256)
        return version

    def history(self, last: int | None = None) -> list[dict[str, Any]]:
        return layout.read_lines(self.layout.events, last)

    def incidents(self, last: int | None = 50) -> list[dict[str, Any]]:
        return layout.read_lines(self.layout.incidents, last)

    def incident(self, kind: str, reason: str, action: str, sha256: str | None, **extra: Any) -> None:
        """Record a store incident (best effort: a read-only store cannot keep it, and must still serve)."""
        rec = {"time": _now(), "kind": kind, "reason": reason, "action": action, "model_sha256": sha256, **extra}
        try:  # under the file's lock like its other writers; the serving models' Policy bounds rotate it
            log = SharedJsonl(self.layout.incidents, max_bytes=sys.maxsize, backups=0)
        except UsageError:  # a read-only store
            return
        log.write((json.dumps(rec, default=str) + "\n").encode("utf-8"))  # a full disk: counted as dropped
        log.close()

    def status(self, *, history: int = 50, incidents: int = 20) -> dict[str, Any]:
        """Active version, candidate with its canary figures, good versions, history and recent incidents."""
        idx = self.index()
        out: dict[str, Any] = {"store": str(self.root), "generation": idx.get("generation", 0)}
        active = dict(idx["active"]) if idx.get("active") else None
        if active:
            try:
                served, problems = self.resolve(idx)
                active["verified"] = served.sha256 == active["sha256"]
                active["signed"] = served.signed if active["verified"] else None
                if problems:
                    active["problems"] = problems
                    out["serving"] = served.sha256
            except MissingDependencyError as err:  # no edgekit[sign] here: not checked, which is not "bad"
                active["verified"] = None
                active["problems"] = [str(err)]
            except EdgekitError as err:
                active["verified"] = False
                active["problems"] = [str(err)]
        out["active"] = active
        cand = dict(idx["candidate"]) if idx.get("candidate") else None
        if cand:
            try:
                cand["figures"] = json.loads(self.layout.canary_figures(cand["sha256"]).read_text())
            except (OSError, ValueError):
                cand["figures"] = None
        out["candidate"] = cand
        out["good"] = list(idx.get("good") or [])
        out["bad"] = list(idx.get("bad") or [])
        try:
            out["trusted_keys"] = [str(k) for k in self.trusted_keys()]
        except SignatureError as err:
            out["trusted_keys"], out["trust_problem"] = [], str(err)
        out["history"] = self.history(history)
        out["incidents"] = self.incidents(incidents)
        return out

    # ---- writing (one writer at a time) --------------------------------------
    def repair(self) -> dict[str, Any]:
        """Rebuild a missing or damaged ``index.json`` from the history and the stored versions.

        The history's events are replayed (index_doc.replay), then checked against the disk: only
        versions that verify stay named; a lost active version is replaced by the newest good one.
        The damaged file is kept beside as ``index.json.damaged-TIME``; a ``repair`` event records it.
        Nothing is removed. A readable index is left as it is (action "unchanged").

        Example:
            >>> ModelStore("/var/lib/app/models").repair()["action"]         # doctest: +SKIP
            'rebuilt'
        """
        with self._locked("repair the index"):
            raw = self._index_bytes()
            idx, problem = index_doc.diagnose(raw) if raw is not None else (None, "index.json is missing")
            if problem is None:
                return {"store": str(self.root), "action": "unchanged", "problem": None,
                        "unnamed": self._unnamed(idx, self._stored_newest_first())}
            return self._rebuild(raw, problem)

    def _replayed(self) -> dict[str, Any]:
        """The index the history describes, kept to the stored versions that verify (index_doc.reconcile)."""
        verified = [s for s in self._stored_newest_first() if self._verifies(s)]
        return index_doc.reconcile(index_doc.replay(self.history(), self.keep), verified, _now())

    def _rebuild(self, raw: bytes | None, problem: str) -> dict[str, Any]:
        idx = self._replayed()
        stored = self._stored_newest_first()
        kept = None
        if raw is not None:  # the damaged bytes stay for a post-mortem; nothing is overwritten unseen
            kept = self.root / f"index.json.damaged-{_now().replace(':', '')}"
            layout.durable_replace(kept, raw)
        reason = (f"index rebuilt from {len(self.history())} events and {len(stored)} stored versions "
                  f"({problem})")
        new = self._commit(idx, {"event": "repair", "sha256": index_doc.active_sha(idx), "reason": reason})
        return {"store": str(self.root), "action": "rebuilt", "problem": problem, "reason": reason,
                "active": index_doc.active_sha(new), "candidate": (new["candidate"] or {}).get("sha256"),
                "good": new["good"], "bad": new["bad"], "damaged_copy": str(kept) if kept else None,
                "unnamed": self._unnamed(new, stored)}

    @staticmethod
    def _unnamed(idx: dict[str, Any], stored: list[str]) -> list[str]:
        """Stored versions the index neither keeps nor marks bad (never pruned: see _prune)."""
        return sorted(set(stored) - index_doc.named(idx) - set(idx["bad"]))

    def _stored_newest_first(self) -> list[str]:
        """The versions in objects/ (well-named folders only), the most recently written first."""
        found = [d for d in self.layout.objects.iterdir() if index_doc.SHA256.match(d.name) and d.is_dir()]
        return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime_ns, reverse=True)]

    def rules(self) -> dict[str, Any]:
        """The rules the store was set up with: ``trust`` (key files, ``deploy --trust``) and ``evidence``
        (``deploy --require-evidence``). From the index, or, while it is missing or damaged (a repair
        verifies every stored version), from the history's events: a lost index never turns signature
        checks or the evidence rule off."""
        raw = self._index_bytes()
        idx, problem = index_doc.diagnose(raw) if raw is not None else (None, "missing")
        if problem is not None:
            idx = index_doc.replay(self.history(), self.keep)
        return {"trust": list(idx.get("trust") or []), "evidence": idx.get("evidence")}

    def _verifies(self, sha: str) -> bool:
        try:
            self.verify(sha)
            return True
        except (StoreError, ModelLoadError):
            return False

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[dict[str, Any]]:
        """Hold the writer lock; yields the current index (a damaged one refuses: see repair)."""
        with self._locked(doing):
            idx = self.index()
            if not idx["generation"] and self._stored_newest_first():
                # index.json was deleted: start from what the history says, or this write would prune
                # every stored version it no longer names
                idx = self._replayed()
            self._recover_event(idx)
            yield idx

    @contextlib.contextmanager
    def _locked(self, doing: str) -> Iterator[None]:
        """Hold the writer lock; leftovers of interrupted writes are removed first."""
        try:
            fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _os_error(err, self.root, doing) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _step("locked")
            self._clean_leftovers()
            yield
        except OSError as err:
            with contextlib.suppress(OSError):
                self._clean_leftovers()  # a full disk: give back what the failed write took
            raise _os_error(err, self.root, doing) from None
        finally:
            os.close(fd)  # closing releases the lock

    def _clean_leftovers(self) -> None:
        if self.layout.tmp.is_dir():
            for p in self.layout.tmp.iterdir():
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        for p in self.root.glob(".index.json.*.tmp"):
            p.unlink(missing_ok=True)

    def _recover_event(self, idx: dict[str, Any]) -> None:
        """A power cut between the index rename and the event append loses the event: put it back."""
        ev = idx.get("last_event")
        if not ev:
            return
        last = self.history(1)
        if not last or last[-1].get("generation", -1) < ev["generation"]:
            layout.append_line(self.layout.events, dict(ev, recovered=True))

    def _commit(self, idx: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        """Write the new index (the atomic step), then append its event."""
        idx = dict(idx, generation=int(idx.get("generation", 0)) + 1)
        event = {"time": _now(), "generation": idx["generation"], **event}
        idx["last_event"] = event
        layout.durable_replace(self.layout.index, (json.dumps(idx, indent=1) + "\n").encode(), _step)
        layout.append_line(self.layout.events, event)
        _step("event-appended")
        return idx

    def add(self, model: str | Path, *, manifest: str | Path | None = None,
            signature: str | Path | None = None, force: bool = False) -> str:
        """Copy a model (with its manifest, and signature) into ``objects/``, verified; returns its sha256.

        Takes the writer lock itself; deploy() calls it then activates or stages. A version marked bad
        is refused unless ``force`` (see deploy).
        """
        with self._writing("add a version") as idx:
            return self._admit(idx, Path(model), manifest, signature, force)[0]

    def _admit(self, idx: dict[str, Any], model: Path, manifest: str | Path | None, signature: str | Path | None,
               force: bool) -> tuple[str, str | None]:
        """_add, then refuse a version marked bad unless ``force``; returns (sha256, why it was bad or None)."""
        stored = set(os.listdir(self.layout.objects))
        sha = self._add(model, manifest, signature)
        override = self._why_bad(sha) if sha in idx["bad"] else None
        if override and not force:
            if sha not in stored:  # copied in just now: remove it again (nothing else ever would)
                self._remove_object(sha, "refused")
            raise StoreError(f"version {sha[:12]} was {override}; deploy it again with --force to override "
                             "(the override is recorded in the history)")
        return sha, override

    def _add(self, model: Path, manifest: str | Path | None, signature: str | Path | None) -> str:
        from ..signing import signature_path_for

        data = read_bytes(model, ModelLoadError, "model file")
        sha = hashlib.sha256(data).hexdigest()
        man_path = Path(manifest) if manifest else manifest_path_for(model)
        sig_path = Path(signature) if signature else signature_path_for(model)
        keys = self.trusted_keys()
        # each file is read once: the bytes that verify are the bytes parsed and stored (a swap cannot slip in);
        # the library reads the signature from its path itself, and a swapped one fails the store's own check
        # at activation (_activate verifies the stored object again)
        man_data = manifest_bytes(man_path)
        sig_data = sig_path.read_bytes() if sig_path.is_file() else None
        if keys:  # the signature first: nothing of an untrusted manifest is parsed before it verifies
            from .. import signing

            try:
                signing.verify(model, keys, manifest=man_path, signature=sig_path, data=data, manifest_data=man_data)
            except SignatureError as err:
                self.incident("signature", str(err), "refused", sha, stage="deploy")
                raise
        man = Manifest.from_bytes(man_data, str(man_path))
        if manifest_sha256(man) != sha:
            raise TamperedModelError(f"{model}: sha256 {sha[:12]}... does not match its manifest's "
                                     f"{str(manifest_sha256(man))[:12]}...; the file changed after conversion")
        dest = self.layout.object(sha)
        if dest.is_dir():
            try:
                self.verify(sha)
                return sha  # already stored and intact: nothing to copy
            except (StoreError, ModelLoadError):
                aside = self.layout.tmp / f"damaged-{uuid.uuid4().hex}"
                os.replace(dest, aside)  # a damaged copy: replace it (removed with the leftovers next time)
        work = self.layout.tmp / uuid.uuid4().hex
        work.mkdir(parents=True)
        half = len(data) // 2
        model_file, man_file, sig_file = layout.files_of(work, layout.model_name(data))
        fd = os.open(model_file, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, data[:half])
            _step("model-half-written")
            view = memoryview(data)[half:]
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        layout.write_file(man_file, man_data)
        if sig_data is not None:
            layout.write_file(sig_file, sig_data)
        layout.fsync_dir(work)
        _step("object-written")
        os.replace(work, dest)
        _step("object-renamed")
        layout.fsync_dir(self.layout.objects)
        return sha

    def trust(self, key: str | Path) -> Path:
        """Add a public key to ``trust/``: from then on, only models signed by a trusted key get in."""
        key = Path(key)
        pem = read_bytes(key, StoreError, "public key")
        if b"PUBLIC KEY" not in pem:
            raise StoreError(f"{key}: not a PEM public key; make one with: openssl ec -in KEY.pem -pubout -out PUB.pem")
        dest = self.layout.trust / f"{hashlib.sha256(pem).hexdigest()[:16]}.pem"
        with self._writing("trust a key") as idx:
            if not dest.exists():
                self.layout.trust.mkdir(exist_ok=True)
                layout.durable_replace(dest, pem)
            recorded = list(idx.get("trust") or [])
            if dest.name not in recorded:  # recorded in the index: an emptied trust/ is then refused, not ignored
                self._commit(dict(idx, trust=recorded + [dest.name]), {"event": "trust", "key": dest.name})
        return dest

    def deploy(self, model: str | Path, *, manifest: str | Path | None = None, signature: str | Path | None = None,
               canary: dict[str, Any] | None = None, reason: str = "deployed", force: bool = False) -> dict[str, Any]:
        """Add ``model`` and activate it, or with ``canary`` ({calls, minutes, budgets}) stage it as the candidate.

        A version the store marked bad (rejected by its canary, rolled back) is refused unless ``force``;
        a forced one carries ``override`` (why it was bad) in the result and in the history's event.
        Returns {"sha256", "action": "activated" | "staged" | "unchanged", "previous"} (+ "override").
        """
        with self._writing("deploy") as idx:
            sha, override = self._admit(idx, Path(model), manifest, signature, force)
            active = index_doc.active_sha(idx)
            if sha == active:
                return {"sha256": sha, "action": "unchanged", "previous": active}
            extra = {"override": override} if override else {}
            if canary is not None and active is not None:
                plan = {"calls": canary.get("calls"), "minutes": canary.get("minutes"),
                        "budgets": Budgets.from_dict(canary.get("budgets")).to_dict()}
                new = index_doc.stage(idx, sha, plan, when=_now())
                self._commit(new, {"event": "stage", "sha256": sha, "active": active, "canary": plan,
                                   "reason": reason, **extra})
                return {"sha256": sha, "action": "staged", "previous": active, **extra}
            # No canary (or nothing to compare against yet): activate now.
            self._activate(idx, sha, "deploy", reason + (" (first version: no canary)" if canary else ""),
                           extra=extra)
            return {"sha256": sha, "action": "activated", "previous": active, **extra}

    def _why_bad(self, sha: str) -> str:
        """Why the history marked ``sha`` bad (its latest reject or rollback), in a few words."""
        for ev in reversed(self.history()):
            if ev.get("event") == "reject" and ev.get("sha256") == sha:
                return f"rejected by its canary at {ev.get('time')} ({ev.get('reason')})"
            if ev.get("event") == "rollback" and ev.get("previous") == sha:
                return f"rolled back at {ev.get('time')} ({ev.get('reason')})"
        return "marked bad by the store"

    def _remove_object(self, sha: str, why: str) -> None:
        """Move a version out of objects/ in one rename, then delete it (a cut leaves it in tmp/ only)."""
        aside = self.layout.tmp / f"{why}-{sha}"
        os.replace(self.layout.object(sha), aside)
        shutil.rmtree(aside, ignore_errors=True)

    def _activate(self, idx: dict[str, Any], sha: str, via: str, reason: str,
                  figures: dict[str, Any] | None = None, demote: bool = False,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make ``sha`` active; the old active version becomes the newest good one (or bad, with demote)."""
        self.verify(sha)  # again at activation: the object may have changed since it was added
        new = index_doc.activate(idx, sha, via, reason, when=_now(), keep=self.keep, demote=demote)
        event = {"event": {"deploy": "activate"}.get(via, via), "sha256": sha,
                 "previous": index_doc.active_sha(idx), "reason": reason, **(extra or {})}
        if figures is not None:
            event["figures"] = figures
        new = self._commit(new, event)
        self._prune(new)
        return new

    def _prune(self, idx: dict[str, Any]) -> None:
        """Remove versions nothing refers to any more (after the index no longer names them).

        Safe because every write starts from an index that names what is stored: a missing one is
        rebuilt from the history first (_writing), a damaged one stops the write.
        """
        keep = index_doc.named(idx)
        for d in self.layout.objects.iterdir():
            if d.name not in keep and not d.name.startswith("."):
                self._remove_object(d.name, "pruned")
        for f in self.layout.canary.glob("*.json") if self.layout.canary.is_dir() else []:
            if f.stem not in keep:
                f.unlink(missing_ok=True)

    def promote(self, sha: str, figures: dict[str, Any] | None = None, reason: str = "canary passed") -> bool:
        """Activate the candidate ``sha`` (verified again first). False when it is no longer the candidate."""
        with self._writing("promote") as idx:
            if (idx.get("candidate") or {}).get("sha256") != sha:
                return False
            try:
                self._activate(idx, sha, "promote", reason, figures)
            except (SignatureError, TamperedModelError, StoreError) as err:
                if isinstance(err, SignatureError):
                    self.incident("signature", str(err), "refused", sha, stage="activation")
                self._reject(idx, sha, f"does not verify at activation: {err}", figures)
                return False
            return True

    def reject(self, sha: str, figures: dict[str, Any] | None = None, reason: str = "canary failed") -> bool:
        """Drop the candidate ``sha`` (the active version stays). False when it is no longer the candidate."""
        with self._writing("reject") as idx:
            if (idx.get("candidate") or {}).get("sha256") != sha:
                return False
            self._reject(idx, sha, reason, figures)
            return True

    def _reject(self, idx: dict[str, Any], sha: str, reason: str, figures: dict[str, Any] | None) -> None:
        new = index_doc.reject(idx, sha)
        self._commit(new, {"event": "reject", "sha256": sha, "reason": reason, "figures": figures})
        self.incident("canary", reason, "rejected", sha, figures=figures)
        self._prune(new)

    def rollback(self, reason: str = "rolled back by hand", figures: dict[str, Any] | None = None, *,
                 expect: str | None = None, automatic: bool = False) -> dict[str, Any] | None:
        """Go back to the newest good version that verifies; the current one is marked bad.

        expect: only if this sha256 is still active (a served process deciding on stale figures does nothing).
        Returns {"sha256", "previous"}, or None when ``expect`` no longer holds.
        """
        with self._writing("roll back") as idx:
            old = (idx.get("active") or {}).get("sha256")
            if expect is not None and old != expect:
                return None
            problems = []
            for sha in idx.get("good") or []:
                try:
                    self.verify(sha)
                except (StoreError, ModelLoadError) as err:
                    problems.append(f"{sha[:12]}: {err}")
                    continue
                via = "rollback"
                self._activate(idx, sha, via, reason, figures, demote=True)
                self.incident("rollback", reason, "automatic rollback" if automatic else "rollback", old,
                              to=sha, figures=figures)
                return {"sha256": sha, "previous": old}
            raise StoreError(f"{self.root}: no previous good version to roll back to"
                             + (f" ({'; '.join(problems)})" if problems else "") + "; deploy a model instead")

    def write_canary_figures(self, sha: str, figures: dict[str, Any]) -> None:
        """The canary's progress for status (best effort, no lock: one small file per candidate)."""
        try:
            self.layout.canary.mkdir(exist_ok=True)
            tmp = self.layout.canary / f".{sha}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(figures, default=str))
            os.replace(tmp, self.layout.canary_figures(sha))
        except OSError:
            pass
