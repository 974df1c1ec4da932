"""The first-run quick validation: real MBPP tasks scored three ways, so every screen has real numbers
within a minute of `make run`: the reference solutions (oracle: the harness passes what should pass),
empty completions (it fails what should fail) and our untrained tiny HRM (an honest 0)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from core.tasks.data import MBPP_SPLITS
from core.views.jobs import JobRequest

TASKS = 20


def quick_validation(mbpp_path: str, tasks: int = TASKS) -> list[JobRequest]:
    """The three eval jobs; the empty completions go to a file outside the run store."""
    first = MBPP_SPLITS["test"][0]
    fd, empty = tempfile.mkstemp(suffix=".jsonl", prefix="hrm-gate-empty-")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"task_id": t, "completion": ""}) + "\n" for t in range(first, first + tasks))
    common = {"data_path": mbpp_path, "limit": tasks}
    return [JobRequest("eval", "quick-oracle", "oracle", common),
            JobRequest("eval", "quick-empty", "oracle", {**common, "samples": str(Path(empty))}),
            JobRequest("eval", "quick-hrm-tiny", "hrm:tiny", {**common, "limit": 5, "max_new_tokens": 48})]
