"""The compute-matched experiment as one command: python -m core experiment --config configs/compute-matched-*.toml.

corpus -> pretrain the candidate architecture -> pretrain the baseline architecture (same corpus,
tokenizer, packed sequences, optimizer, schedule and measured FLOPs budget) -> then the release
pipeline's steps on the two checkpoints: eval of both under one shared protocol -> collect ->
decide (paired test + KPIs) -> publish/W&B/report/alerts as configured. Resumable like the
pipeline: a step whose output is there with the same settings is skipped; trainings resume from
their checkpoints, evaluations at the sample.

The TOML is a pipeline TOML (see pipeline.toml) without [train] and without a model in
[candidate]/[baseline], plus:
  [experiment]  out_dir, candidate = "hrm:27m", baseline = "hf-arch:gpt2"
  [corpus]      CorpusConfig settings (out: where the corpus is built, default out_dir/corpus)
  [pretrain]    TrainConfig settings both trainings share (flops, batch, seq_len, lr, ...)
Outputs in out_dir: train-candidate/, train-baseline/ (run directories), the pipeline's outputs,
experiment.json (both models, the budget, the corpus manifest, both final validation losses).
"""
from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from core.base.config import check_table, table_keys
from core.base.errors import UsageError
from core.base.store import RunDir, atomic_write_json, read_json, read_jsonl
from core.flow.pipeline import Pipeline, check_config
from core.lab.config import CorpusConfig, TrainConfig

log = logging.getLogger(__name__)
OWN = {"experiment": ("out_dir", "candidate", "baseline")}
SIDES = {"candidate": "train-candidate", "baseline": "train-baseline"}


def load_experiment(path: str | Path) -> tuple[dict, dict]:
    """(the experiment's own tables, the pipeline config for the evaluation half)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"experiment config not found: {p}; pass --config configs/compute-matched-*.toml")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: not valid TOML ({exc})") from None
    exp = {"experiment": raw.pop("experiment", {}), "corpus": raw.pop("corpus", {}), "pretrain": raw.pop("pretrain", {})}
    unknown = sorted(set(exp["experiment"]) - set(OWN["experiment"]))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} in [experiment] of {p}; known: {', '.join(OWN['experiment'])}")
    for side in SIDES:
        if not exp["experiment"].get(side):
            raise UsageError(f"{p}: [experiment] needs {side} = SPEC (e.g. hrm:tiny, hf-arch:gpt2-tiny)")
        if "model" in raw.get(side, {}) or "samples" in raw.get(side, {}):
            raise UsageError(f"{p}: [{side}] takes no model or samples: the experiment evaluates its own checkpoints")
    if "train" in raw:
        raise UsageError(f"{p}: no [train] section in an experiment; its trainings are set in [pretrain]")
    corpus_out = exp["corpus"].get("out")
    exp["corpus"] = check_table(CorpusConfig, exp["corpus"], f"[corpus] of {p}", table_keys(CorpusConfig), ("out",))
    if corpus_out:
        exp["corpus"]["out"] = str(corpus_out)
    exp["pretrain"] = check_table(TrainConfig, exp["pretrain"], f"[pretrain] of {p}", table_keys(TrainConfig))
    if exp["pretrain"].get("model"):
        raise UsageError(f"{p}: [pretrain] takes no model; name both in [experiment]")
    if not exp["pretrain"].get("flops"):
        raise UsageError(f"{p}: [pretrain] needs flops = BUDGET: both models train on the same measured FLOPs")
    out = Path(exp["experiment"].get("out_dir", "cache/experiments/default"))
    exp["corpus"].setdefault("out", str(out / "corpus"))
    cfg = dict(raw)
    cfg.setdefault("pipeline", {})["out_dir"] = str(out)
    kinds = {"candidate": "hrm", "baseline": "hf"}
    for side, run in SIDES.items():
        spec = exp["experiment"][side]
        kind = "hrm" if spec.startswith("hrm:") else "hf"
        kinds[side] = kind
        cfg.setdefault(side, {})["model"] = f"{kind}:{out / run / 'checkpoint'}"
    return exp, check_config(cfg, p)


class Experiment(Pipeline):
    """The pipeline with a corpus and two pretrainings in place of its train step."""

    def __init__(self, exp: dict, cfg: dict, redo=(), progress=True):
        super().__init__(cfg, redo=tuple(redo), progress=progress)
        self.exp = exp

    def corpus_config(self) -> CorpusConfig:
        return CorpusConfig(**{"data_path": self._p("data_path"), **self.exp["corpus"]}, progress=self.progress)

    def pretrain_config(self, side: str) -> TrainConfig:
        return TrainConfig(**{"seed": self.shared()["seed"], **self.exp["pretrain"]}, model=self.exp["experiment"][side],
                           run_dir=str(self.path(SIDES[side])), corpus=self.exp["corpus"]["out"])

    def train_runs(self) -> list[str]:
        return [str(self.path(run)) for run in SIDES.values()]

    def steps(self) -> list[tuple[str, Callable[[], bool] | None, Callable[[], str]]]:
        own = [("corpus", lambda: (Path(self.exp["corpus"]["out"]) / "manifest.json").exists(), self.corpus),
               ("train-candidate", self._run_done(SIDES["candidate"]), lambda: self.pretrain("candidate")),
               ("train-baseline", self._run_done(SIDES["baseline"]), lambda: self.pretrain("baseline"))]
        rest = [s for s in super().steps() if s[0] != "train"]
        return own + rest + [("experiment", lambda: False, self.summarise)]

    def inputs(self, name: str) -> dict:
        if name == "corpus":
            return json.loads(json.dumps(asdict(self.corpus_config()) | {"progress": None}, default=str))
        if name in ("train-candidate", "train-baseline"):
            side = name.split("-")[1]
            return json.loads(json.dumps(asdict(self.pretrain_config(side)), default=str))
        if name.startswith("eval-"):  # the main and the sampled evals of each side
            side = name.split("-")[1]
            return {**super().inputs(name), "trained": self.inputs(f"train-{side}")}
        return super().inputs(name)

    def preflight(self) -> None:
        self.corpus_config(), self.pretrain_config("candidate"), self.pretrain_config("baseline")
        self.eval_config("candidate"), self.eval_config("baseline")
        if self.sampled_off() is None:
            self.eval_config("candidate", sampled=True), self.eval_config("baseline", sampled=True)

    def corpus(self) -> str:
        from core.lab.corpus import build_corpus
        m = build_corpus(self.corpus_config())
        return (f"{m['files_kept']} files, {m['splits']['train']['tokens']:,} train tokens, dropped {m['dropped']}, "
                f"{m['build_seconds']} s")

    def pretrain(self, side: str) -> str:
        from core.lab.train import train
        s = train(self.pretrain_config(side))
        return (f"{self.exp['experiment'][side]}: {s['steps']} steps, {s['flops']:.3g} FLOPs, {s['tokens']:,} tokens, "
                f"val loss {s['val_loss']:.4f}")

    def report(self) -> str:
        from core.publish.report import build_report
        out = build_report(self.stats_doc(), str(self.path("candidate")), str(self.path("baseline")),
                           self.path("summary.pdf"), bench=self.bench_file(), pretrain_runs=self.train_runs())
        return str(out)

    def summarise(self) -> str:
        doc = experiment_summary(self.out)
        atomic_write_json(self.path("experiment.json"), doc)
        return "; ".join(f"{side} {m['model']}: val loss {m['final_val_loss']:.4f} after {m['flops']:.3g} FLOPs"
                         for side, m in doc["models"].items())


def experiment_summary(out: str | Path) -> dict:
    """Both pretrainings side by side, from their run directories (read, not recomputed)."""
    out = Path(out)
    models, corpus = {}, None
    for side, name in SIDES.items():
        run = RunDir(out / name)
        m = run.manifest()
        rows = read_jsonl(run.file("metrics.jsonl"))
        vals = [r for r in rows if r.get("val_loss") is not None]
        speed = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
        mfu = [r["mfu"] for r in rows if r.get("mfu")]
        models[side] = {"model": m.get("model"), "run": str(run.path), "params": m.get("params"),
                        "flops_per_step": m["flops"]["per_step"], "steps": m["flops"]["steps"],
                        "flops": rows[-1]["flops"] if rows else 0, "tokens": rows[-1]["tokens"] if rows else 0,
                        "final_val_loss": vals[-1]["val_loss"] if vals else None,
                        "tokens_per_s": sorted(speed)[len(speed) // 2] if speed else None,
                        "mfu": sorted(mfu)[len(mfu) // 2] if mfu else None, "device": m.get("device")}
        corpus = corpus or m.get("protocol", {}).get("corpus")
    budget = RunDir(out / SIDES["candidate"]).manifest()["flops"]["budget"]
    manifest = read_json(Path(corpus) / "manifest.json") if corpus and (Path(corpus) / "manifest.json").exists() else None
    stats = read_json(out / "stats.json") if (out / "stats.json").exists() else {}
    return {"kind": "experiment", "budget_flops": budget, "models": models, "corpus": corpus,
            "corpus_manifest": manifest, "verdict": stats.get("verdict")}
