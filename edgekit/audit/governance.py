"""The governance record: what data and tools an audit used, who ran it, and what it covers of NIST AI RMF MEASURE 2.

Subcategory texts are from NIST AI 100-1, "Artificial Intelligence Risk Management
Framework (AI RMF 1.0)", January 2023, section 5.3 (MEASURE), Table 3; the AI RMF
Playbook (https://airc.nist.gov/AI_RMF_Knowledge_Base/Playbook/Measure) repeats them with
suggested actions. Each subcategory is mapped to the audit sections that give evidence
for it, or marked as not covered, so a reviewer sees the gaps as plainly as the checks.

Declared facts (data source, licenses) come from flags or a small TOML file::

    [eval]
    source = "scikit-learn load_digits, test split seed 0"
    license = "CC BY 4.0"
    [calibration]
    source = "..."
    license = "..."
    [model]
    license = "Apache-2.0"

Example:
    >>> rows = nist_measure_map({"data", "guard"})
    >>> rows[0]["id"], rows[0]["covered"]
    ('MEASURE 2.1', True)
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import platform
import socket
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..fsutil import sha256_file
from ..tomldata import tomllib

NIST_SOURCE = ("NIST AI 100-1, Artificial Intelligence Risk Management Framework (AI RMF 1.0), Jan 2023, "
               "5.3 Measure, Table 3; AI RMF Playbook, MEASURE")

# (id, text, audit sections that give evidence, what the audit does for it / why it does not)
MEASURE_2 = (
    ("MEASURE 2.1", "Test sets, metrics, and details about the tools used during test, evaluation, validation, "
     "and verification (TEVV) are documented.",
     ("data", "governance"), "hashes, sizes and counts of every data set, metric definitions, tool versions"),
    ("MEASURE 2.2", "Evaluations involving human subjects meet applicable requirements (including human subject "
     "protection) and are representative of the relevant population.",
     (), "not covered: the audit runs no evaluation with human subjects"),
    ("MEASURE 2.3", "AI system performance or assurance criteria are measured qualitatively or quantitatively and "
     "demonstrated for conditions similar to deployment setting(s). Measures are documented.",
     ("accuracy", "robustness", "classes"), "accuracy of the converted file as shipped, through the runtime, "
     "clean and under corruptions; per class"),
    ("MEASURE 2.4", "The functionality and behavior of the AI system and its components - as identified in the MAP "
     "function - are monitored when in production.",
     (), "not covered here: production monitoring is EdgeModel.health() (drift, incidents) on the device"),
    ("MEASURE 2.5", "The AI system to be deployed is demonstrated to be valid and reliable. Limitations of the "
     "generalizability beyond the conditions under which the technology was developed are documented.",
     ("robustness", "guard", "data"), "accuracy against corruption strength; out-of-distribution detection; "
     "leakage between reference and eval data"),
    ("MEASURE 2.6", "The AI system is evaluated regularly for safety risks - as identified in the MAP function. "
     "The AI system to be deployed is demonstrated to be safe, its residual negative risk does not exceed the risk "
     "tolerance, and it can fail safely, particularly if made to operate beyond its knowledge limits. Safety "
     "metrics reflect system reliability and robustness, real-time monitoring, and response times for AI system "
     "failures.",
     ("guard", "robustness"), "the guard's detection and false-positive rates (failing safely beyond the "
     "knowledge limits); thresholds as the verdict's risk tolerance"),
    ("MEASURE 2.7", "AI system security and resilience - as identified in the MAP function - are evaluated and "
     "documented.",
     ("adversarial", "backdoor"), "FGSM/PGD attacks and their transfer to the converted file; a planted-trigger probe"),
    ("MEASURE 2.8", "Risks associated with transparency and accountability - as identified in the MAP function - "
     "are examined and documented.",
     ("governance",), "who ran the audit, when, with which tools; declared sources and licenses"),
    ("MEASURE 2.9", "The AI model is explained, validated, and documented, and AI system output is interpreted "
     "within its context - as identified in the MAP function - to inform responsible use and governance.",
     (), "partly: the manifest documents the model; no explanation method (attribution, saliency) is run"),
    ("MEASURE 2.10", "Privacy risk of the AI system - as identified in the MAP function - is examined and "
     "documented.",
     (), "not covered: no membership-inference or data-extraction test"),
    ("MEASURE 2.11", "Fairness and bias - as identified in the MAP function - are evaluated and results are "
     "documented.",
     ("classes", "groups"), "accuracy per class (label); with --groups (or an eval array 'group'), accuracy, agreement "
     "and guard false positives per group and the largest gap between groups (partly: only the groups the data carry)"),
    ("MEASURE 2.12", "Environmental impact and sustainability of AI model training and management activities - as "
     "identified in the MAP function - are assessed and documented.",
     (), "not covered: edgekit profile measures inference latency and memory, not energy"),
    ("MEASURE 2.13", "Effectiveness of the employed TEVV metrics and processes in the MEASURE function are "
     "evaluated and documented.",
     ("adversarial", "backdoor", "guard"), "partly: each test checks it has teeth (the attack lowers the source's "
     "accuracy; the probe is validated on a planted trigger in the test suite; the guard's thresholds are fitted "
     "on one half of the clean data and measured on the other)"),
)


def nist_measure_map(sections: set[str]) -> list[dict[str, Any]]:
    """One row per MEASURE 2.x subcategory: its text, whether this audit gives evidence, and how."""
    rows = []
    for ident, text, needs, how in MEASURE_2:
        present = [s for s in needs if s in sections]
        rows.append({"id": ident, "text": text, "covered": bool(present), "evidence": present, "how": how})
    return rows


def load_declarations(path: str | Path | None, **flags: str | None) -> dict[str, dict[str, str | None]]:
    """Declared source and license per data set and the model's license; flags override the TOML file."""
    out: dict[str, dict[str, str | None]] = {"eval": {}, "calibration": {}, "train": {}, "model": {}}
    if path is not None:
        p = Path(path)
        try:
            table = tomllib.loads(p.read_text("utf-8"))
        except FileNotFoundError:
            raise DataError(f"{p}: governance file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{p}: not valid TOML ({err}); see docs/audit.md for the layout") from None
        for key, value in table.items():
            if key not in out or not isinstance(value, dict) or set(value) - {"source", "license"}:
                raise DataError(f"{p}: unexpected entry {key!r}; allowed tables: {', '.join(out)}, "
                                "each with source and license")
            out[key].update({k: str(v) for k, v in value.items()})
    for name, value in flags.items():  # e.g. eval_license="CC0"
        if value is not None:
            what, field = name.rsplit("_", 1)
            out[what][field] = value
    return out


def dataset_record(ds, x, role: str, declared: dict[str, str | None]) -> dict[str, Any]:
    """Hashes, size and count of one data set as the audit used it, with its declared source and license."""
    from .datacheck import array_sha256

    src = Path(ds.source) if ds is not None and ds.source and not ds.source.startswith("<") else None
    several = isinstance(x, dict)  # a model with several inputs: shape and hash per input name
    first = next(iter(x.values())) if several else x
    rec: dict[str, Any] = {"role": role, "path": str(src) if src else None, "samples": int(len(first)),
                           "sample_shape": {k: list(v.shape[1:]) for k, v in x.items()} if several
                           else list(x.shape[1:]),
                           # several inputs: one digest over the inputs' digests, in the model's input order
                           "samples_sha256": hashlib.sha256("".join(array_sha256(v) for v in x.values())
                                                            .encode()).hexdigest() if several else array_sha256(x),
                           "labels": ds is not None and ds.y is not None,
                           "declared_source": declared.get("source"), "declared_license": declared.get("license")}
    if src is not None and src.is_file():
        rec["file_sha256"] = sha256_file(src)
        rec["file_bytes"] = src.stat().st_size
    return rec


def run_record() -> dict[str, Any]:
    """Who ran the audit, where and when."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = None
    return {"user": user, "host": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(),
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
