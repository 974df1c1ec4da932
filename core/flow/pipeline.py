"""One command for the whole gate: python -m core pipeline --config pipeline.toml.

Steps, in order: train (optional) -> eval candidate -> eval baseline -> eval candidate-sampled ->
eval baseline-sampled -> bench (optional) -> collect -> decide (paired test + KPIs -> stats.json with
the verdict) -> publish (badge, results/, release tag) -> W&B -> report (PDF) -> alerts. Only decide
computes; the steps after it read stats.json. Each step is skipped when its output is already in the
pipeline's directory, so a pipeline killed half-way and started again with the same command picks up
where it stopped, and a finished one does nothing. Runs themselves (train, eval) resume at the
sample/step level. The summary lists every step: ran, skipped, off.

The standard two-run protocol: the candidate/baseline pair runs [pipeline]'s protocol (greedy, n = 1,
by default) and gives pass@1, its delta (the primary KPI), p, CI and power; the candidate-sampled/
baseline-sampled pair runs the same protocol with [sampled]'s sampling (n = 10, T = 0.8, top_p = 0.95
by default; `enabled = false` switches it off) and gives pass@10, with its own pass@1 kept in
stats.json as "sampled_pass_at_1", labelled, not used for the verdict.

Outputs in OUT_DIR: train/, candidate/, baseline/, candidate-sampled/, baseline-sampled/ (run
directories), bench.json, collected.json, stats.json (with the verdict once the gate ran), badge.svg,
wandb.json, summary.pdf, alerts.json, steps.json (the settings each finished step ran with: a step
whose settings changed runs again), pipeline.json (the summary).
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.base.errors import GateError, UsageError
from core.base.config import check_table, defaults, table_keys
from core.base.settings import KPIS_PATH, MBPP_PATH, RELEASE_TAG
from core.evaluation.config import EvalConfig, SampledConfig
from core.evaluation.protocol import settings
from core.lab.config import BenchConfig, TrainConfig
from core.base.store import RunDir, atomic_write_json, read_json

log = logging.getLogger(__name__)

STEPS = ("train", "eval-candidate", "eval-baseline", "eval-candidate-sampled", "eval-baseline-sampled", "bench", "collect",
         "decide", "publish", "wandb", "report", "alerts")
REDOABLE = ("bench", "collect", "decide", "publish", "wandb", "report", "alerts")
REDO_ALIASES = {"stats": "decide", "gate": "decide"}  # the step names before decide/publish were split
# The tables of pipeline.toml. [pipeline], [train], [candidate]/[baseline] and [bench] come from the run
# kinds' config dataclasses (their defaults too); the others are the pipeline's own.
CONFIGS = {"train": (TrainConfig, "own"), "candidate": (EvalConfig, "side"), "baseline": (EvalConfig, "side"),
           "bench": (BenchConfig, "own"), "pipeline": (EvalConfig, "pipeline"), "sampled": (SampledConfig, "own")}
OWN = {
    "pipeline": ("out_dir",),
    "gate": ("kpis", "resamples", "intersection", "allow_mismatch", "publish", "release", "tag", "repo_dir"),
    "wandb": ("mode",),
    "report": ("enabled",),
    "alerts": ("sinks", "repo", "pr", "sha"),
}
# the types of the pipeline's own keys (lists: of strings)
OWN_TYPES = {"out_dir": str, "kpis": str, "resamples": int, "intersection": bool, "allow_mismatch": list,
             "publish": str, "release": bool, "tag": str, "repo_dir": str, "mode": str, "enabled": bool,
             "sinks": list, "repo": str, "pr": int, "sha": str, "models": list}
SECTIONS = ("pipeline", "sampled", "train", "candidate", "baseline", "bench", "gate", "wandb", "report", "alerts")
TRAINED = "train"  # a candidate model of "train" means the checkpoint the [train] step made
SIDES = ("candidate", "baseline")
SAMPLED = "-sampled"  # the sampled pair's run directories: candidate-sampled/, baseline-sampled/


class PipelineError(GateError):
    pass


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """pipeline.toml, checked against the run kinds' configs and OWN, with command-line overrides applied ("section.key": value)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"pipeline config not found: {p}; pass --config FILE (see pipeline.toml in the repository)")
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: not valid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, key = dotted.split(".")
            cfg.setdefault(section, {})[key] = value
    return check_config(cfg, p)


def check_config(cfg: dict, p: Path) -> dict:
    """A parsed pipeline config checked against the run kinds' configs and OWN (p names it in errors)."""
    for section, table in cfg.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise UsageError(f"{p}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if section in CONFIGS:
            cls, scope = CONFIGS[section]
            table.update(check_table(cls, table, f"[{section}] of {p}", table_keys(cls, scope), OWN.get(section, ())))
        else:
            unknown = sorted(set(table) - set(OWN[section]))
            if unknown:
                raise UsageError(f"unknown key {unknown[0]!r} in [{section}] of {p}; known: {', '.join(sorted(OWN[section]))}")
        for key, value in table.items():
            want = OWN_TYPES.get(key) if key in OWN.get(section, ()) or (section, key) == ("bench", "models") else None
            bad = want is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))
                                        or (want is list and not all(isinstance(v, str) for v in value)))
            if bad:
                kind = "a list of strings" if want is list else want.__name__
                raise UsageError(f"[{section}] {key} = {value!r} in {p} should be {kind}")
    for side in ("candidate", "baseline"):
        table = cfg.get(side, {})
        if bool(table.get("model")) == bool(table.get("samples")):
            raise UsageError(f"{p}: [{side}] needs exactly one of model = SPEC or samples = FILE")
    if "train" in cfg and not cfg["train"].get("model"):
        raise UsageError(f"{p}: [train] needs model = SPEC (e.g. hrm:tiny)")
    if cfg["candidate"].get("model") == TRAINED and "train" not in cfg:
        raise UsageError(f"{p}: [candidate] model = \"train\" needs a [train] section")
    cfg.setdefault("pipeline", {}).setdefault("out_dir", "cache/pipeline/default")
    return cfg


@dataclass
class StepResult:
    name: str
    status: str  # ran | skipped | off | failed
    seconds: float
    detail: str


@dataclass
class Pipeline:
    cfg: dict
    redo: tuple[str, ...] = ()
    progress: bool = True
    results: list[StepResult] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return Path(self.cfg["pipeline"]["out_dir"])

    def path(self, name: str) -> Path:
        return self.out / name

    # ---------------------------------------------------------------- settings
    def _p(self, key, default=None):
        return self.cfg["pipeline"].get(key, default)

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(self.shared()["ks"])

    def model_spec(self, side: str) -> str | None:
        spec = self.cfg[side].get("model")
        return f"hrm:{self.path('train') / 'checkpoint'}" if spec == TRAINED else spec

    def train_runs(self) -> list[str] | None:
        return [str(self.path("train"))] if "train" in self.cfg else None

    def bench_file(self) -> str | None:
        return str(self.path("bench.json")) if self.path("bench.json").exists() else None

    def publish_dir(self) -> str | None:
        g = self.cfg.get("gate", {})
        if g.get("publish") or g.get("release"):
            return g.get("publish") or str(Path(g.get("repo_dir", ".")) / "results")
        return None

    def kpis(self) -> str | None:
        return self.cfg.get("gate", {}).get("kpis")

    # ---------------------------------------------------------------- the run kinds' configs
    def shared(self) -> dict:
        """The [pipeline] settings both eval sides share, at their EvalConfig defaults where not set: among them
        the protocol (core.evaluation.protocol), built here once for both sides."""
        keys = table_keys(EvalConfig, "pipeline")
        return {**{k: v for k, v in defaults(EvalConfig, "toml").items() if k in keys},
                **{k: v for k, v in self.cfg["pipeline"].items() if k in keys}}

    def eval_config(self, side: str, sampled: bool = False) -> EvalConfig:
        """One side's eval; sampled: its run under the sampled protocol ([pipeline]'s with [sampled]'s sampling)."""
        table = {k: v for k, v in self.cfg[side].items() if k != "model"}
        shared = {**self.shared(), **(self.sampled_config().protocol() if sampled else {})}
        return EvalConfig(run_dir=str(self.path(side + (SAMPLED if sampled else ""))), **shared, **table,
                          model=self.model_spec(side), progress=self.progress)

    def sampled_config(self) -> SampledConfig:
        return SampledConfig(**self.cfg.get("sampled", {}))

    def sampled_off(self) -> str | None:
        """Why the sampled pair does not run (None: it runs)."""
        if not self.sampled_config().enabled:
            return "[sampled] enabled = false: pass@10 not measured"
        scored = [side for side in SIDES if self.cfg[side].get("samples")]
        if scored:
            return (f"[{scored[0]}] scores a samples file, made under one protocol: no sampled pair "
                    "(pass@10 from the main pair where it has samples enough)")
        return None

    def run_names(self) -> list[str]:
        """The eval run directories this pipeline makes: the main pair, then the sampled pair when on."""
        return [*SIDES, *([s + SAMPLED for s in SIDES] if self.sampled_off() is None else [])]

    def train_config(self) -> TrainConfig:
        s = self.shared()
        return TrainConfig(**{"seed": s["seed"], **self.cfg["train"]}, run_dir=str(self.path("train")),
                           dataset=s["dataset"], data_path=s["data_path"])

    def bench_config(self) -> BenchConfig:
        b = dict(self.cfg["bench"])
        specs = b.pop("models", None) or [s for s in (self.model_spec("candidate"), self.model_spec("baseline")) if s]
        specs = [self.model_spec("candidate") if s == TRAINED else s for s in specs]
        return BenchConfig(**b, models=specs, out=str(self.path("bench.json")),
                           data_path=self._p("data_path") or MBPP_PATH)

    # ---------------------------------------------------------------- steps
    def steps(self) -> list[tuple[str, Callable[[], bool] | None, Callable[[], str]]]:
        """(name, output there?, run) per step; output there? is None where the config switches the step off."""
        has_bench = "bench" in self.cfg
        wandb_on = self.cfg.get("wandb", {}).get("mode", "auto") != "off"
        report_on = self.cfg.get("report", {}).get("enabled", True)
        return [
            ("train", self._run_done("train") if "train" in self.cfg else None, self.train),
            ("eval-candidate", self._run_done("candidate"), lambda: self.evaluate("candidate")),
            ("eval-baseline", self._run_done("baseline"), lambda: self.evaluate("baseline")),
            ("eval-candidate-sampled", None if self.sampled_off() else self._run_done("candidate" + SAMPLED),
             lambda: self.evaluate("candidate", sampled=True)),
            ("eval-baseline-sampled", None if self.sampled_off() else self._run_done("baseline" + SAMPLED),
             lambda: self.evaluate("baseline", sampled=True)),
            ("bench", (lambda: self.path("bench.json").exists()) if has_bench else None, self.bench),
            ("collect", lambda: self._newer("collected.json", self._run_files()), self.collect),
            ("decide", lambda: self._newer("stats.json", self._run_files() + self._bench_files()) and self._has_verdict(),
             self.decide),
            ("publish", lambda: self._newer("badge.svg", [self.path("stats.json")]), self.publish),
            ("wandb", (lambda: self.path("wandb.json").exists()) if wandb_on else None, self.wandb),
            ("report", (lambda: self._newer("summary.pdf", [self.path("stats.json")])) if report_on else None,
             self.report),
            ("alerts", lambda: self._newer("alerts.json", [self.path("stats.json")]), self.alerts),
        ]

    def inputs(self, name: str) -> dict:
        """The settings a step's output depends on: a step whose settings changed since it ran is not done."""
        data = {k: self._p(k) for k in table_keys(EvalConfig, "pipeline") if k not in ("workers", "batch")}
        sampled = None if self.sampled_off() else self.sampled_config().protocol()
        g = self.cfg.get("gate", {})
        kpis = Path(self.kpis() or KPIS_PATH)
        by_step = {
            "train": {**self.cfg.get("train", {}), "data": data},
            "eval-candidate": {**self.cfg["candidate"], "data": data},
            "eval-baseline": {**self.cfg["baseline"], "data": data},
            "eval-candidate-sampled": {**self.cfg["candidate"], "data": data, "sampled": sampled},
            "eval-baseline-sampled": {**self.cfg["baseline"], "data": data, "sampled": sampled},
            "bench": self.cfg.get("bench", {}),
            "decide": {"ks": data["ks"], "seed": data["seed"], "resamples": g.get("resamples"),
                       "intersection": g.get("intersection"), "allow_mismatch": g.get("allow_mismatch"),
                       "train": "train" in self.cfg, "sampled": sampled,
                       "kpis": kpis.read_text(encoding="utf-8") if kpis.is_file() else None},
            "publish": {k: v for k, v in g.items() if k in ("publish", "release", "tag", "repo_dir")},
            "wandb": self.cfg.get("wandb", {}),
            "alerts": self._alert_target(),
        }
        return json.loads(json.dumps(by_step.get(name, {}), sort_keys=True, default=str))

    def _recorded(self) -> dict:
        p = self.path("steps.json")
        return read_json(p) if p.exists() else {}

    def _run_done(self, name: str) -> Callable[[], bool]:
        def done() -> bool:
            run = RunDir(self.path(name))
            return run.exists() and run.status() == "done"
        return done

    def _run_files(self) -> list[Path]:
        return [self.path(n) / "results.jsonl" for n in self.run_names()]

    def _bench_files(self) -> list[Path]:
        return [self.path("bench.json")]

    def _newer(self, name: str, inputs: list[Path]) -> bool:
        out = self.path(name)
        if not out.exists():
            return False
        return all(not i.exists() or i.stat().st_mtime <= out.stat().st_mtime for i in inputs)

    def _has_verdict(self) -> bool:
        return bool(read_json(self.path("stats.json")).get("verdict"))

    def train(self) -> str:
        from core.lab.train import train
        cfg = self.train_config()
        with self._followed("train"):
            s = train(cfg)
        return f"{cfg.model}: {s['steps']} steps, loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}"

    def evaluate(self, side: str, sampled: bool = False) -> str:
        from core.evaluation.evaluate import run_eval
        with self._followed(side + (SAMPLED if sampled else "")):
            s = run_eval(self.eval_config(side, sampled))
        ks = ", ".join(f"pass@{k} {v:.3f}" for k, v in s["pass_at_k"].items()) or "no pass@k"
        return f"{s['model']}: {ks} ({s['n_tasks']} tasks, {s['n_samples']} samples)"

    def bench(self) -> str:
        from core.lab.bench import run_bench
        report = run_bench(self.bench_config())
        return "; ".join(f"{spec}: {m['latency_ms']:.1f} ms, {m['throughput_tok_s']:.1f} tok/s"
                         for spec, m in report["models"].items())

    def collect(self) -> str:
        from core.evaluation.collect import collect
        names = [n for n in ("train", *self.run_names()) if RunDir(self.path(n)).exists()]
        summaries = {n: collect(self.path(n)) for n in names}
        keep = ("run_id", "kind", "model", "status", "pass_at_k", "n_tasks", "n_samples", "status_counts", "training")
        atomic_write_json(self.path("collected.json"), {n: {k: s.get(k) for k in keep if k in s} for n, s in summaries.items()})
        return ", ".join(f"{n} {summaries[n].get('status')}" for n in names)

    def decide(self) -> str:
        """The paired test (one bootstrap per pair: the main pair, then the sampled pair when on) and the KPIs ->
        stats.json with the verdict."""
        from core.decide.gate import compare_sampled, decide, paired_comparisons, save_stats
        from core.decide.kpi import load_kpis
        from core.decide.stats import show_p
        g = self.cfg.get("gate", {})
        candidate, baseline = str(self.path("candidate")), str(self.path("baseline"))
        test = dict(ks=self.ks, resamples=int(g.get("resamples", 10_000)), seed=int(self.shared()["seed"]),
                    intersection=bool(g.get("intersection", False)),
                    alpha=load_kpis(self.kpis())["significance"]["alpha"],
                    allow_mismatch=g.get("allow_mismatch", ()), kpis=self.kpis())
        paired = paired_comparisons(candidate, baseline, **test)
        sampled = None
        if self.sampled_off() is None:
            sampled = compare_sampled(candidate, baseline, tuple(str(self.path(s + SAMPLED)) for s in SIDES), **test)
        result = decide(paired, candidate, baseline, bench=self.bench_file(), kpis=self.kpis(),
                        train_runs=self.train_runs(), sampled=sampled)
        save_stats(result.stats, self.path("stats.json"))
        log.info("%s", result.text)
        c = paired.pass_at_1
        tenth = result.stats.get("pass_at_10")
        extra = (f"; delta pass@10 {100 * tenth['delta']:+.1f} pp ({result.stats['sources']['pass_at_10']} pair)"
                 if tenth else "")
        return (f"delta pass@1 {100 * c.delta:+.1f} pp, 95% CI [{100 * c.ci95[0]:+.1f}, {100 * c.ci95[1]:+.1f}], "
                f"p {show_p(c.p_for_decision, c.resamples, c.p_decision_method)}{extra}; verdict {result.verdict.verdict}")

    def stats_doc(self) -> dict:
        return read_json(self.path("stats.json"))

    def publish(self) -> str:
        """Badge in out_dir; with [gate] publish/release, results/, the README line, the PDF and the tag."""
        from core.decide.gate import model_of
        from core.decide.kpi import load_kpis
        from core.publish.release import candidate_pass_at_1, publish_gate, write_badge
        stats = self.stats_doc()
        g = self.cfg.get("gate", {})
        target = load_kpis(self.kpis())["accuracy"]["pass_at_1_min"]
        write_badge(self.path("badge.svg"), candidate_pass_at_1(stats), target)
        lines = [f"badge {100 * (candidate_pass_at_1(stats) or 0):.1f}%"]
        if self.publish_dir():
            candidate, baseline = str(self.path("candidate")), str(self.path("baseline"))
            train = self.train_runs()
            lines += publish_gate(stats, candidate, baseline, self.publish_dir(), target,
                                  models=(model_of(candidate), model_of(baseline)), bench=self.bench_file(),
                                  train_run=train[0] if train else None, release=bool(g.get("release")),
                                  tag=g.get("tag", RELEASE_TAG), repo_dir=g.get("repo_dir", "."))
        return "; ".join(lines)

    # ---------------------------------------------------------------- W&B (issue 18): live runs, named for people
    def wandb_setting(self) -> str:
        return self.cfg.get("wandb", {}).get("mode", "auto")

    @property
    def name(self) -> str:
        """The pipeline's name for people: its out_dir's folder (smoke, release...); the W&B group."""
        return self.out.resolve().name

    def run_label(self, name: str) -> str:
        if name == "train":
            t = self.cfg["train"]
            return f"{self.name} · train {t['model']} ({t.get('steps', TrainConfig.steps)} steps)"
        if name.endswith(SAMPLED):
            s = self.sampled_config()
            return f"{self.run_label(name[:-len(SAMPLED)])} · sampled T {s.temperature:g}, n {s.n}"
        spec = self.cfg[name].get("model")
        if spec == TRAINED:
            t = self.cfg["train"]
            what = f"{t['model']} trained {t.get('steps', TrainConfig.steps)} steps"
        else:
            what = spec or f"samples {Path(self.cfg[name]['samples']).name}"
        return f"{self.name} · {name} {what}"

    def run_tags(self, name: str) -> list[str]:
        tags = [f"pipeline:{self.name}", f"role:{name}"]
        if name == "train" or self.cfg.get(name.removesuffix(SAMPLED), {}).get("model") == TRAINED:
            tags.append(f"model:{self.cfg['train']['model']}")
        return tags

    @contextlib.contextmanager
    def _followed(self, name: str):
        """A live W&B run beside the run step (core.publish.live's follower, a process of its own)."""
        from core.publish.tracking import wandb_mode
        if wandb_mode(self.wandb_setting()) is None:
            yield
            return
        from core.publish.live import start_follower, wait_follower
        proc = start_follower(self.path(name), self.wandb_setting(), self.name, self.run_label(name),
                              self.run_tags(name))
        try:
            yield
        finally:
            wait_follower(proc, self.path(name))

    def wandb(self) -> str:
        """The runs' live W&B runs (their followers' wandb_run.json; a run made without one is logged now),
        the bench, and the gate's evidence and alerts."""
        from core.publish.live import INFO_FILE
        from core.publish.tracking import log_bench, log_gate, log_run, short_model
        mode = self.wandb_setting()
        logged = {}
        for name in ("train", *self.run_names()):
            run = RunDir(self.path(name))
            if not run.exists():
                continue
            info = read_json(run.file(INFO_FILE)) if run.file(INFO_FILE).exists() else None
            if info is None or info.get("status") == "running":
                info = log_run(self.path(name), mode, group=self.name, name=self.run_label(name),
                               tags=self.run_tags(name))
            logged[name] = info
        if self.bench_file():
            report = read_json(self.path("bench.json"))
            logged["bench"] = log_bench(report, mode, self.out, group=self.name,
                                        name=f"{self.name} · bench {short_model(report['candidate'])} vs "
                                             f"{short_model(report['baseline'])}",
                                        tags=[f"pipeline:{self.name}"])
        if self.path("stats.json").exists():
            from core.base.store import read_jsonl
            stats = self.stats_doc()
            monitor = [a for n in ("train", *self.run_names()) for a in read_jsonl(self.path(n) / "alerts.jsonl")]
            logged["gate"] = log_gate(stats, monitor, mode, self.out, group=self.name,
                                      name=f"{self.name} · gate {stats.get('verdict')}", tags=[f"pipeline:{self.name}"])
        atomic_write_json(self.path("wandb.json"), logged)
        url = (logged.get("candidate") or {}).get("url")
        publish_dir = self.publish_dir()
        if url and publish_dir and self.path("stats.json").exists():
            from core.publish.release import update_readme
            models = tuple(RunDir(self.path(n)).manifest().get("model") for n in ("candidate", "baseline"))
            update_readme(Path(publish_dir).resolve().parent / "README.md", Path(publish_dir).resolve(),
                          read_json(self.path("stats.json")), url, models)
        shown = logged.get("candidate") or next(iter(logged.values()), None) or {}
        return f"{len(logged)} W&B run(s), {shown.get('mode')}; candidate: {shown.get('url') or shown.get('dir')}"

    def report(self) -> str:
        from core.publish.report import build_report
        train = self.train_runs()
        out = build_report(self.stats_doc(), str(self.path("candidate")), str(self.path("baseline")),
                           self.path("summary.pdf"), bench=self.bench_file(), train_run=train[0] if train else None)
        return str(out)

    def _alert_target(self) -> dict:
        a = self.cfg.get("alerts", {})
        return {"sinks": list(a.get("sinks", ["console"])), "repo": a.get("repo"), "pr": a.get("pr"), "sha": a.get("sha")}

    def alerts(self) -> str:
        from core.publish.alerts import dispatch
        target = self._alert_target()
        monitor_files = [str(p) for n in ("train", *self.run_names())
                         if (p := self.path(n) / "alerts.jsonl").exists()]
        wandb_url = None
        if self.path("wandb.json").exists():
            wandb_url = ((read_json(self.path("wandb.json")).get("candidate") or {}).get("url"))
        outcome = dispatch(str(self.path("stats.json")), monitor_files, target["sinks"], target["repo"], target["pr"],
                           target["sha"], wandb_url)
        atomic_write_json(self.path("alerts.json"), {
            "target": target, "verdict": outcome.verdict, "labels": outcome.labels, "state": outcome.state,
            "alerts": [{"rule": a.rule, "severity": a.severity, "message": a.message} for a in outcome.alerts]})
        return f"{len(outcome.alerts)} alert(s) to {', '.join(target['sinks'])}"

    # ---------------------------------------------------------------- driver
    def preflight(self) -> None:
        """What would fail hours into the pipeline fails now, before anything runs or is written."""
        self.eval_config("candidate"), self.eval_config("baseline")  # settings out of bounds fail here
        if self.sampled_off() is None:
            self.eval_config("candidate", sampled=True), self.eval_config("baseline", sampled=True)
        if "train" in self.cfg:
            self.train_config()
        if "bench" in self.cfg:
            self.bench_config()
        from core.models import parse_spec
        data_path = self._p("data_path")
        if data_path and not Path(data_path).is_file():
            raise UsageError(f"[pipeline] data_path {data_path} not found; point it at mbpp.jsonl "
                             f"(e.g. {MBPP_PATH}) or remove it to download MBPP")
        specs = [self.cfg.get("train", {}).get("model")] if "train" in self.cfg else []
        for side in ("candidate", "baseline"):
            samples = self.cfg[side].get("samples")
            if samples and not Path(samples).is_file():
                raise UsageError(f"[{side}] samples file not found: {samples}")
            specs.append(self.cfg[side].get("model"))
        specs += list(self.cfg.get("bench", {}).get("models") or [])
        for text in filter(None, specs):
            if text == TRAINED:
                continue
            spec = parse_spec(text)
            if spec.kind == "hf":
                from core.models.hf import check_available
                check_available(spec.arg)
            elif spec.kind == "hrm" and "/" in spec.arg and not Path(spec.arg).is_dir():
                raise UsageError(f"{text}: checkpoint directory not found")

    def run(self) -> list[StepResult]:
        self.preflight()
        self.out.mkdir(parents=True, exist_ok=True)
        for name, done, action in self.steps():
            t0 = time.perf_counter()
            if done is None:
                off = self.sampled_off() if name.endswith(SAMPLED) else None
                self._record(StepResult(name, "off", 0.0, off or "not configured"))
                continue
            if name not in self.redo and done() and self._recorded().get(name) == self.inputs(name):
                self._record(StepResult(name, "skipped", 0.0, "output already there"))
                continue
            log.info("pipeline step %s", name)
            try:
                detail = action()
            except GateError as exc:
                self._record(StepResult(name, "failed", time.perf_counter() - t0, str(exc)))
                raise PipelineError(f"step {name} failed: {exc}; then run the same command again "
                                    "(finished steps are skipped)") from None
            atomic_write_json(self.path("steps.json"), {**self._recorded(), name: self.inputs(name)})
            self._record(StepResult(name, "ran", time.perf_counter() - t0, detail))
        return self.results

    def _record(self, result: StepResult) -> None:
        self.results.append(result)
        atomic_write_json(self.path("pipeline.json"), {
            "config": self.cfg, "protocol": settings(self.eval_config("candidate")),
            "sampled_protocol": None if self.sampled_off() else settings(self.eval_config("candidate", sampled=True)),
            "steps": [r.__dict__ for r in self.results], "verdict": self.verdict()})

    def verdict(self) -> str | None:
        p = self.path("stats.json")
        return read_json(p).get("verdict") if p.exists() else None


def format_summary(pipe: Pipeline) -> str:
    lines = [f"pipeline {pipe.out}: verdict {pipe.verdict() or 'not decided'}",
             f"  {'step':<24}{'status':<9}{'time':>9}  detail"]
    for r in pipe.results:
        took = f"{r.seconds:.1f} s" if r.status in ("ran", "failed") else "-"
        lines.append(f"  {r.name:<24}{r.status:<9}{took:>9}  {r.detail}")
    ran = sum(r.status == "ran" for r in pipe.results)
    lines.append(f"  {ran} step(s) ran, {sum(r.status == 'skipped' for r in pipe.results)} skipped "
                 f"(outputs in {pipe.out}; summary in {pipe.path('pipeline.json')})")
    return "\n".join(lines)


def parse_redo(text: str | None) -> tuple[str, ...]:
    steps = tuple(REDO_ALIASES.get(s.strip(), s.strip()) for s in (text or "").split(",") if s.strip())
    for s in steps:
        if s not in REDOABLE:
            hint = " (runs resume by themselves: delete the run directory to start it over)" if s in STEPS else ""
            raise UsageError(f"--redo {s!r}: choose from {', '.join(REDOABLE)}{hint}")
    return steps
