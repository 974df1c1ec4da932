"""Comparability: two runs are compared only when they answered the same question the same way.

Both runs' manifests are read and every field of the shared protocol (core.evaluation.protocol,
the manifest's "protocol") is checked: the data set (name, split, sha256), the generation settings
(prompt template, n, temperature, top_p, top_k, max_new_tokens, stop sequences, context window and
rule) and the execution settings (timeout, challenge tests, sandbox
limits), and both runs must have finished. A difference is refused with one line naming the
field, unless the caller accepts it by name (`--allow-mismatch FIELD`); what was accepted is
recorded in stats.json, the PDF and the PR comment. Runs scored from a samples file, and the
oracle, sampled nothing here: their generation settings are unknown (None) and differ from a
model's unless accepted.
"""
from __future__ import annotations

from pathlib import Path

from core.base.errors import UsageError
from core.base.store import RunDir

DATASET = ("dataset.name", "dataset.split", "dataset.sha256")
SAMPLING = ("protocol.prompt", "protocol.n", "protocol.temperature", "protocol.top_p", "protocol.top_k",
            "protocol.max_new_tokens", "protocol.stop", "protocol.context_window", "protocol.context_policy")
EXECUTION = ("protocol.timeout_s", "protocol.challenge_tests", "protocol.limits", "protocol.environment")
FIELDS = DATASET + SAMPLING + EXECUTION
GROUPS = {"dataset": DATASET, "sampling": SAMPLING, "execution": EXECUTION}


class IncomparableError(UsageError):
    """Two runs whose protocols differ, or a run that did not finish; `field` names what --allow-mismatch would
    accept (the app offers it as a choice)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def run_of(path: str | Path) -> RunDir | None:
    """The run directory behind a run path or its results.jsonl; None where there is no manifest."""
    p = Path(path)
    run = RunDir(p if p.is_dir() else p.parent)
    return run if run.exists() else None


def _get(manifest: dict, dotted: str):
    value = manifest
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def expand(allowed) -> set[str]:
    """Field names as given: full (protocol.temperature), short (temperature), a group, or 'status'/'manifest'."""
    out = set()
    for name in allowed or ():
        if name in GROUPS:
            out |= set(GROUPS[name])
        elif name in ("status", "manifest") or name in FIELDS:
            out.add(name)
        else:
            full = [f for f in FIELDS if f.split(".", 1)[1] == name]
            if not full:
                raise UsageError(f"--allow-mismatch {name!r}: not a protocol field; use one of "
                                 f"{', '.join(f.split('.', 1)[1] for f in FIELDS)}, a group "
                                 f"({', '.join(GROUPS)}), status or manifest")
            out |= set(full)
    return out


def check(candidate: str | Path, baseline: str | Path, allow=()) -> dict:
    """The comparability record for stats.json; raises IncomparableError on the first difference not allowed."""
    allowed = expand(allow)
    accepted = []
    paths = {"candidate": candidate, "baseline": baseline}
    runs = {side: run_of(path) for side, path in paths.items()}
    for side, run in runs.items():
        if run is None:
            if "manifest" not in allowed:
                raise IncomparableError(f"the {side} {paths[side]} has no manifest.json, so its protocol "
                                        "cannot be checked; compare run directories, or pass --allow-mismatch manifest",
                                        field="manifest")
            accepted.append({"field": "manifest", side: None})
            continue
        status = run.status()
        if status != "done":
            if "status" not in allowed:
                raise IncomparableError(f"the {side} run {run.run_id} has not finished (status {status}); rerun its "
                                        "command to complete it, or pass --allow-mismatch status", field="status")
            accepted.append({"field": "status", side: status})
    if None in runs.values():
        return {"checked": [], "accepted": accepted}
    a, b = runs["candidate"].manifest(), runs["baseline"].manifest()
    for field in FIELDS:
        va, vb = _get(a, field), _get(b, field)
        if va == vb:
            continue
        if field not in allowed:
            short = field.split(".", 1)[1]
            raise IncomparableError(f"candidate and baseline differ in {field}: {va!r} vs {vb!r}; evaluate both under "
                                    f"one protocol, or pass --allow-mismatch {short} to accept and record it", field=short)
        accepted.append({"field": field, "candidate": va, "baseline": vb})
    return {"checked": list(FIELDS), "accepted": accepted,
            "statuses": {side: run.status() for side, run in runs.items()}}


SAMPLING_ONLY = ("protocol.n", "protocol.temperature", "protocol.top_p")  # what a sampled pair may change


def check_pairs(main: tuple, sampled: tuple, allow=()) -> None:
    """The two-run protocol: each side's sampled run is the same model on the same data under the same protocol as
    its main run, but for n, temperature and top_p; raises IncomparableError naming the side and the field."""
    allowed = expand(allow)
    for side, run_a, run_b in zip(("candidate", "baseline"), main, sampled):
        ra, rb = run_of(run_a), run_of(run_b)
        if ra is None or rb is None:
            continue
        a, b = ra.manifest(), rb.manifest()
        for field in ("model", *FIELDS):
            if field in SAMPLING_ONLY or field in allowed or _get(a, field) == _get(b, field):
                continue
            raise IncomparableError(f"the {side}'s sampled run {rb.run_id} differs from its main run {ra.run_id} in "
                                    f"{field}: {_get(b, field)!r} vs {_get(a, field)!r}; a sampled pair changes only "
                                    "n, temperature and top_p (rerun the pipeline, or give the matching runs)",
                                    field=field.split(".", 1)[-1])


def describe(stats: dict) -> list[str]:
    """Plain lines for a stats.json's comparability record: what was checked, and what was accepted."""
    record = stats.get("comparability")
    if not record:
        return ["comparability: not checked (stats.json written before protocols were compared)"]
    lines = [f"comparability: {len(record.get('checked', []))} protocol fields checked and both runs finished"
             if not record.get("accepted") else
             f"comparability: {len(record.get('checked', []))} protocol fields checked; differences accepted by "
             "--allow-mismatch:"]
    for a in record.get("accepted", []):
        values = ", ".join(f"{side} {a[side]!r}" for side in ("candidate", "baseline") if side in a)
        lines.append(f"  {a['field']}: {values}")
    return lines
