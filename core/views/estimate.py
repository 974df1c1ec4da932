"""What an eval launched from the app will cost, said before it starts: a model with random weights scores 0
on every task, and on all 500 MBPP tasks it can decode for most of an hour on a CPU, so the Runs screen warns
first, with a rough duration from the speeds measured here (an earlier run of the model, else a bench)."""
from __future__ import annotations

from pathlib import Path

from core.base.errors import ModelSpecError, UsageError
from core.base.store import list_runs, read_json
from core.decide.kpi import match_bench
from core.models import is_trained, parse_spec
from core.views import fmt
from core.views.dashboard import bench_files
from core.views.jobs import JobRequest, config_for, split_size
from core.views.overview import short_path

WARN_SAMPLES = 20  # an untrained model on more samples than this: a warning before the launch


def measured_speed(spec: str, max_new_tokens: int, store: Path | None = None) -> tuple[float, str] | None:
    """(samples per second, where it was measured) for `spec`: its newest run in the store that generated at the
    same max_new_tokens, else a bench of it (tokens per second over max_new_tokens: a sample that stops early
    takes less). None where neither was measured."""
    runs = []
    for run in list_runs(store, readable_only=True):
        m, summary = run.manifest(), run.file("run_summary.json")
        same = (m.get("protocol") or {}).get("max_new_tokens") == max_new_tokens
        if m.get("kind") == "eval" and m.get("model") == spec and same and summary.exists():
            speed = (read_json(summary).get("timings") or {}).get("generation_samples_per_s")
            if speed:
                runs.append((m.get("started_at") or "", speed, run.run_id))
    if runs:
        _, speed, name = max(runs)
        return speed, f"run {name}, measured here"
    for path in sorted(bench_files(store), key=lambda p: p.stat().st_mtime, reverse=True):
        doc = read_json(path)
        figures = match_bench(doc, spec) or {}
        if figures.get("throughput_tok_s"):
            where = (doc.get("machine") or {}).get("cpu") or "?"
            return figures["throughput_tok_s"] / max_new_tokens, \
                f"{figures['throughput_tok_s']:.0f} tok/s decoding in {short_path(path)} ({where}), on prompts shorter " \
                "than MBPP's"
    return None


def launch_warning(req: JobRequest, store: Path | None = None) -> str | None:
    """What to say before launching `req`: an eval of a model with random weights on more than WARN_SAMPLES
    samples (its expected score, and roughly how long it runs); None for anything else."""
    if req.kind != "eval" or req.settings.get("samples"):
        return None
    try:
        spec = parse_spec(req.model)
    except ModelSpecError:
        return None  # the launch itself says what is wrong with the spec
    if is_trained(spec) is not False:
        return None
    try:
        cfg = config_for(req, Path(store or ".") / req.name)
    except UsageError:
        return None  # as for the spec: the launch says it
    tasks = cfg.limit or split_size(cfg.data_path) or 0
    samples = tasks * cfg.n
    if samples <= WARN_SAMPLES:
        return None
    text = (f"{fmt.model_name(str(spec))} has random weights (untrained): expect pass@1 of 0%. {tasks:,} tasks x "
            f"{cfg.n} sample(s) x up to {cfg.max_new_tokens:,} new tokens")
    speed = measured_speed(str(spec), cfg.max_new_tokens, store)
    text += (f" takes {fmt.duration(samples / speed[0])} to generate, roughly ({speed[1]})" if speed
             else " has no measured speed here to time it by")
    return text + (". To try the harness, lower Tasks (eval) or Max new tokens (eval), or choose a trained model "
                   "(GPT-2-117M, or a checkpoint as the model spec hrm:PATH); or launch it anyway.")
