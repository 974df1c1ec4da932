"""Scoring imported generations (core.tasks.imports) in the sandbox, and checking their authors' own
pass/fail labels against our results."""
from __future__ import annotations

from pathlib import Path

from core.base.store import RunDir, read_json, read_jsonl
from core.evaluation.config import EvalConfig
from core.evaluation.evaluate import run_eval


def import_config(doc: dict, run_dir: str | Path, mbpp_path: str, **settings) -> EvalConfig:
    """The eval of an import (import.json's document): its samples against its own tests (mbpp-typed) or
    MBPP's asserts; settings are EvalConfig's (split, timeout, workers, ks...)."""
    own = doc.get("tests") is not None
    return EvalConfig(run_dir=str(run_dir), samples=doc["samples"], dataset="mbpp-typed" if own else "mbpp",
                      data_path=doc["tests"] if own else mbpp_path,
                      extra_manifest={"imported": {k: doc[k] for k in ("format", "source", "source_sha256", "name")}},
                      **settings)


def score_import(doc: dict, run_dir: str | Path, mbpp_path: str, **settings) -> dict:
    return run_eval(import_config(doc, run_dir, mbpp_path, **settings))


def import_doc(run_dir: str | Path) -> dict | None:
    """The import.json beside a run's samples file (written by core.tasks.imports.write_import), if any."""
    info = RunDir(run_dir).manifest().get("model_info") or {}
    if not info.get("samples_file"):
        return None
    samples = Path(info["samples_file"])
    doc = samples.with_name(samples.name.removesuffix(".jsonl") + ".import.json")
    return read_json(doc) if doc.is_file() else None


def check_labels(doc: dict, run_dir: str | Path) -> dict:
    """The authors' is_solved per task against our first sample's result: counts and every disagreement."""
    labels = doc.get("authors_labels") or {}
    ours = {str(r["task_id"]): r for r in read_jsonl(RunDir(run_dir).file("results.jsonl")) if r["sample_id"] == 0}
    checked = [k for k in labels if k in ours]
    disagree = [{"task_id": int(k), "authors": labels[k], "ours": ours[k]["passed"], "status": ours[k]["status"],
                 "error": (ours[k].get("error") or "")[-200:]}
                for k in checked if labels[k] != ours[k]["passed"]]
    return {"checked": len(checked), "agree": len(checked) - len(disagree),
            "authors_solved": sum(labels[k] for k in checked), "ours_solved": sum(ours[k]["passed"] for k in checked),
            "disagreements": disagree}
