"""How isolated each run's samples were, read from the sandbox report in its manifest, so that the
Runs and Accuracy screens say when isolation was reduced instead of claiming a full sandbox."""
from __future__ import annotations

from core.base.store import RunDir

FULL = "own uid, own PID and network namespaces, read-only file system"


def reduced(report: dict | None) -> str | None:
    """Why a sandbox report falls short of full isolation, in plain words; None when it does not."""
    if not isinstance(report, dict):
        return None  # scored before runs recorded their sandbox (or not an eval)
    gaps = []
    if "namespace_error" in report:
        gaps.append(f"no namespaces ({report['namespace_error']}): limits only, samples shared the "
                    "caller's network, /tmp and processes")
    elif "PID namespace" not in str(report.get("processes", "")):
        gaps.append("no PID namespace: samples could see and signal other processes of their uid")
    if "unprivileged, one per worker" not in str(report.get("user", "")):
        gaps.append("samples ran as the caller's own uid")
    return "; ".join(gaps) or None


def reduced_runs(runs: list[RunDir]) -> dict[str, str]:
    """run id -> why its samples ran with reduced isolation, for the runs where they did."""
    out = {}
    for run in runs:
        try:
            why = reduced(run.manifest().get("sandbox"))
        except (OSError, ValueError, AttributeError):
            continue  # an unreadable manifest is shown as such by the runs table
        if why:
            out[run.run_id] = why
    return out
