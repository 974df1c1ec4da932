"""Efficiency benchmark (DESIGN.md, Definitions): parameters, latency, throughput, peak training RAM.

All models are measured in one process run on one machine, repetitions interleaved A B A B so
that drift in the machine's speed hits every model alike; medians and spread are reported with
the torch thread count and the machine. On a GPU every timing is bracketed by CUDA syncs and
the training loop also reports peak CUDA memory.

- Params: total and non-embedding, counted from the module.
- Latency (512 tok): one forward pass over a 512-token input at batch 1 (prefill), after
  warm-up; median. Cross-checked by torch.utils.benchmark's own timer on the same call.
- Throughput: generated tokens per second at batch 8, 256 new tokens, KV cache on, greedy,
  every sequence forced to the full 256 tokens.
- Peak RAM (train): peak RSS of a separate `python -m core train` process over N steps at
  batch 8 x 512 tokens (so the benchmark's own memory does not count).
"""
from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.base.errors import UsageError
from core.base.machine import machine_info
from core.lab.config import BenchConfig
from core.base.store import REPO_ROOT, atomic_write_json

log = logging.getLogger(__name__)
PROTOCOL = {"latency": "forward pass, batch 1, 512 tokens, median after warm-up",
            "throughput": "greedy generation, batch 8, 32-token prompts, 256 new tokens, KV cache on",
            "train_ram": "peak RSS of a training process, batch 8 x 512 tokens, AdamW"}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class BenchModel:
    """A model under benchmark: forward over ids, and generation at a batch with a KV cache."""

    def __init__(self, spec: str):
        from core.models import load_generator, parse_spec
        self.spec = spec
        self.gen = load_generator(parse_spec(spec))
        self.kind = "hrm" if spec.startswith("hrm:") else "hf"
        if self.kind == "hf" and self.gen.seq2seq:
            raise ValueError(f"{spec}: the benchmark covers causal LMs")
        self.model = self.gen.model.to(_device()).eval()
        self.vocab = self.model.cfg.vocab_size if self.kind == "hrm" else self.model.config.vocab_size
        self.trained = self.gen.trained

    def params(self) -> dict:
        p = self.gen.describe()["params"]
        return {"params_total": p["total"], "params_nonembedding": p["non_embedding"]}

    @torch.no_grad()
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.kind == "hrm":
            return self.model(ids)
        return self.model(input_ids=ids, use_cache=False).logits

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, new_tokens: int) -> int:
        if self.kind == "hf":
            out = self.model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                                      pad_token_id=0)
            return (out.shape[1] - prompts.shape[1]) * out.shape[0]
        cache = self.model.new_cache(prompts.shape[0], prompts.shape[1] + new_tokens)
        logits = self.model(prompts, cache)[:, -1]
        for _ in range(new_tokens):
            logits = self.model(logits.argmax(-1, keepdim=True), cache)[:, -1]
        return new_tokens * prompts.shape[0]


def time_call(fn) -> float:
    _sync()
    t = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t


def independent_latency_ms(bm: BenchModel, ids: torch.Tensor) -> float:
    """torch.utils.benchmark's own measurement of the same forward pass (its median)."""
    from torch.utils import benchmark
    timer = benchmark.Timer(stmt="bm.forward(ids)", globals={"bm": bm, "ids": ids},
                            num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=2.0).median * 1000


def train_peak_rss(spec: str, steps: int, data_path: str, batch: int = 8, seq_len: int = 512) -> dict:
    with tempfile.TemporaryDirectory(prefix="hrm-gate-bench-train-") as tmp:
        cmd = [sys.executable, "-m", "core", "train", "--model", spec, "--steps", str(steps), "--batch", str(batch),
               "--seq-len", str(seq_len), "--checkpoint-every", "0", "--wandb", "off", "--data-path", data_path, "--run-dir",
               str(Path(tmp) / "run")]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"training loop for {spec} failed: {proc.stderr.strip().splitlines()[-1:]}")
        manifest = json.loads((Path(tmp) / "run" / "manifest.json").read_text())
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    out = {"peak_train_rss_mb": manifest["peak_rss_mb"], "train_steps": steps, "train_batch": batch,
           "train_seq_len": seq_len, "train_step_s_median": statistics.median(batch * seq_len / r["seq_tokens_per_s"]
                                                                               for r in rows)}
    if any("cuda_peak_mb" in r for r in rows):
        out["peak_train_cuda_mb"] = max(r.get("cuda_peak_mb", 0) for r in rows)
    return out


def run_bench(cfg: BenchConfig) -> dict:
    """Every figure of every model in cfg.models, side by side; written to cfg.out when given."""
    if not cfg.models:
        raise UsageError("the benchmark needs at least one model: --model SPEC (repeat for a baseline)")
    specs, out, repeats, throughput_repeats = cfg.models, cfg.out, cfg.repeats, cfg.throughput_repeats
    train_steps, data_path, seq_len, batch, new_tokens = cfg.train_steps, cfg.data_path, cfg.seq_len, cfg.batch, cfg.new_tokens
    torch.manual_seed(0)
    models = [BenchModel(s) for s in specs]
    report = {"machine": machine_info(), "torch_threads": torch.get_num_threads(), "device": str(_device()),
              "protocol": PROTOCOL, "candidate": specs[0], "baseline": specs[-1], "models": {}}
    figures = {m.spec: {**m.params(), "trained": m.trained} for m in models}
    ids = {m.spec: torch.randint(0, min(m.vocab, 16384), (1, seq_len), device=_device()) for m in models}
    prompts = {m.spec: torch.randint(0, min(m.vocab, 16384), (batch, 32), device=_device()) for m in models}
    for m in models:  # warm-up
        for _ in range(2):
            m.forward(ids[m.spec])
    lat = {m.spec: [] for m in models}
    for _ in range(repeats):
        for m in models:
            lat[m.spec] += [1000 * time_call(lambda: m.forward(ids[m.spec])) for _ in range(3)]
    for m in models:
        figures[m.spec].update(latency_ms=statistics.median(lat[m.spec]), latency_ms_spread=[min(lat[m.spec]), max(lat[m.spec])],
                               latency_check_ms=independent_latency_ms(m, ids[m.spec]))
    tput = {m.spec: [] for m in models}
    for _ in range(throughput_repeats):
        for m in models:
            made = []
            seconds = time_call(lambda: made.append(m.generate(prompts[m.spec], new_tokens)))
            tput[m.spec].append(made[0] / seconds)
    for m in models:
        figures[m.spec].update(throughput_tok_s=statistics.median(tput[m.spec]),
                               throughput_spread=[min(tput[m.spec]), max(tput[m.spec])])
    if not cfg.skip_train:
        for m in models:
            figures[m.spec].update(train_peak_rss(m.spec, train_steps, data_path, batch, seq_len))
    report["models"] = figures
    if out:
        atomic_write_json(Path(out), report)
    return report


def format_report(report: dict) -> str:
    m = report["machine"]
    cand, base = report["candidate"], report["baseline"]
    lines = [f"efficiency on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB, GPU: {m['gpu']}), "
             f"torch threads {report['torch_threads']}, device {report['device']}"]
    for spec, f in report["models"].items():
        lat_check = 100 * (f["latency_check_ms"] - f["latency_ms"]) / f["latency_ms"]
        lines.append(f"  {spec:16s} params {f['params_total'] / 1e6:7.2f}M total, {f['params_nonembedding'] / 1e6:7.2f}M "
                     f"non-embedding{'' if f['trained'] else ' (untrained weights)'}")
        lines.append(f"  {'':16s} latency {f['latency_ms']:8.1f} ms [{f['latency_ms_spread'][0]:.1f}-"
                     f"{f['latency_ms_spread'][1]:.1f}]  (torch.utils.benchmark: {f['latency_check_ms']:.1f} ms, "
                     f"{lat_check:+.0f}%)")
        lines.append(f"  {'':16s} throughput {f['throughput_tok_s']:8.1f} tok/s [{f['throughput_spread'][0]:.1f}-"
                     f"{f['throughput_spread'][1]:.1f}]" + (f"  peak train RSS {f['peak_train_rss_mb']:.0f} MB "
                                                            f"({f['train_steps']} steps, "
                                                            f"{f['train_step_s_median']:.1f} s/step)"
                                                            if "peak_train_rss_mb" in f else ""))
    return "\n".join(lines)


@torch.no_grad()
def decode_tokens_per_s(model, context: int, new_tokens: int, use_cache: bool) -> float:
    """Greedy HRM decoding of new_tokens after `context` prompt tokens at batch 1 (prefill not timed)."""
    ids = torch.randint(0, model.cfg.vocab_size, (1, context))
    if use_cache:
        cache = model.new_cache(1, context + new_tokens)
        logits = model(ids, cache)[:, -1]
        started = time.perf_counter()
        for _ in range(new_tokens):
            logits = model(logits.argmax(-1, keepdim=True), cache)[:, -1]
    else:
        logits = model(ids)[:, -1]
        started = time.perf_counter()
        for _ in range(new_tokens):
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
            logits = model(ids)[:, -1]
    return new_tokens / (time.perf_counter() - started)


def run_bench_kv(model_spec: str = "hrm:27m", context: int = 512, new_tokens: int = 32, repeats: int = 3) -> dict:
    """HRM decoding tokens/s with and without the KV cache, and with it at several context lengths."""
    from core.models import load_generator, parse_spec
    model = load_generator(parse_spec(model_spec)).model
    with_cache, without = [], []
    for _ in range(repeats):  # interleaved so drift in machine speed hits both alike
        with_cache.append(decode_tokens_per_s(model, context, new_tokens, True))
        without.append(decode_tokens_per_s(model, context, new_tokens, False))
    flat = {c: statistics.median(decode_tokens_per_s(model, c, new_tokens, True) for _ in range(repeats))
            for c in (64, 256, 1024)}
    report = {"model": model_spec, "context": context, "new_tokens": new_tokens, "torch_threads": torch.get_num_threads(),
              "machine": machine_info(), "with_cache_tok_s": statistics.median(with_cache),
              "without_cache_tok_s": statistics.median(without), "with_cache_by_context": flat}
    report["speedup"] = report["with_cache_tok_s"] / report["without_cache_tok_s"]
    m = report["machine"]
    print(f"{model_spec} greedy decoding, batch 1, {context} tokens of context, {new_tokens} new tokens, "
          f"median of {repeats}; {m['cpu']} ({m['cores']} cores), torch threads {report['torch_threads']}")
    print(f"  with KV cache    {report['with_cache_tok_s']:8.1f} tok/s")
    print(f"  without KV cache {report['without_cache_tok_s']:8.1f} tok/s")
    print(f"  speedup          {report['speedup']:8.1f}x")
    print("  with cache by context: " + ", ".join(f"{c} tok: {v:.1f} tok/s" for c, v in flat.items()))
    return report
