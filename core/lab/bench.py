"""Efficiency benchmark (DESIGN.md, Definitions): parameters, latency, throughput, peak training RAM.

All models are measured in one process run on one machine, repetitions interleaved A B A B so
that drift in the machine's speed hits every model alike. Every timed figure has a warm-up round
first, then `repeats` rounds; bench.json keeps each figure's median and its spread [min, max], the
torch thread count (set with --threads) and the machine.

The seed's throughput KPI is "tok/s CPU": the CPU is the KPI's device, always measured. With
--device cuda (or auto where a GPU is present) every timed figure is measured again on the GPU, in
--dtype (bf16 where supported), bracketed by CUDA syncs: an extra column labelled "gpu", never the KPI.

- Params: total and non-embedding, counted from the module.
- Latency (512 tok): one forward pass over a 512-token input at batch 1 (prefill); 3 passes per
  round. Cross-checked by torch.utils.benchmark's own timer on the same call.
- Throughput: generated tokens per second at batch 8, 256 new tokens, greedy, every sequence forced
  to the full 256 tokens. Both models decode with the same loop (DECODE_LOOP): a prefill forward,
  then one forward per token over the model's KV cache, argmax in between; no generate(), so
  neither model pays per-step overhead the other does not.
- Peak RAM (train): peak RSS of a separate `python -m core train` process over N steps at
  batch 8 x 512 tokens (so the benchmark's own memory does not count); one process, so no spread.
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
from core.models.device import dtype_name, resolve_device, resolve_dtype, sync

log = logging.getLogger(__name__)
DECODE_LOOP = ("plain KV-cache loop for every model: one prefill forward, then one forward per new token over the "
               "model's own KV cache (HRM: preallocated per block application; transformers: its DynamicCache), "
               "greedy argmax in between, no generate()")
PROTOCOL = {"latency": "forward pass, batch 1, 512 tokens, median of the rounds after a warm-up round",
            "throughput": "greedy decoding, batch 8, 32-token prompts, 256 new tokens, KV cache on",
            "decode_loop": DECODE_LOOP,
            "train_ram": "peak RSS of a training process, batch 8 x 512 tokens, AdamW"}


class BenchModel:
    """A model under benchmark on one device: forward over ids, and greedy decoding at a batch with a KV cache."""

    def __init__(self, spec: str, device=None, dtype=None):
        from core.models import load_generator, parse_spec
        self.spec = spec
        self.gen = load_generator(parse_spec(spec))
        self.kind = "hrm" if spec.startswith("hrm:") else "hf"
        if self.kind == "hf" and self.gen.seq2seq:
            raise ValueError(f"{spec}: the benchmark covers causal LMs")
        self.device = device or torch.device("cpu")
        self.model = self.gen.model.to(device=self.device, dtype=dtype or torch.float32).eval()
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
        """DECODE_LOOP: tokens made (batch x new_tokens; EOS does not stop it)."""
        if self.kind == "hrm":
            cache = self.model.new_cache(prompts.shape[0], prompts.shape[1] + new_tokens)
            logits = self.model(prompts, cache)[:, -1]
            for _ in range(new_tokens):
                logits = self.model(logits.argmax(-1, keepdim=True), cache)[:, -1]
        else:
            import inspect
            # transformers 5 renames past_key_values to cache (the old name warns from 5.2x, goes in 5.40)
            name = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
            out = self.model(input_ids=prompts, use_cache=True)
            past, logits = getattr(out, name), out.logits[:, -1]
            for _ in range(new_tokens):
                out = self.model(input_ids=logits.argmax(-1, keepdim=True), use_cache=True, **{name: past})
                past, logits = getattr(out, name), out.logits[:, -1]
        return new_tokens * prompts.shape[0]


def time_call(fn, device=None) -> float:
    sync(device or "cpu")
    t = time.perf_counter()
    fn()
    sync(device or "cpu")
    return time.perf_counter() - t


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


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


def measure(models: list[BenchModel], cfg: BenchConfig) -> dict:
    """Latency and throughput of every model on their device: a warm-up round, then cfg.repeats rounds
    (throughput: cfg.throughput_repeats), interleaved across models."""
    dev = models[0].device
    ids = {m.spec: torch.randint(0, min(m.vocab, 16384), (1, cfg.seq_len), device=dev) for m in models}
    prompts = {m.spec: torch.randint(0, min(m.vocab, 16384), (cfg.batch, 32), device=dev) for m in models}
    lat = {m.spec: [] for m in models}
    tput = {m.spec: [] for m in models}
    for m in models:  # warm-up: allocator, kernels and caches, not measured
        for _ in range(2):
            m.forward(ids[m.spec])
        m.generate(prompts[m.spec], min(cfg.new_tokens, 8))
    for _ in range(cfg.repeats):
        for m in models:
            lat[m.spec] += [1000 * time_call(lambda: m.forward(ids[m.spec]), dev) for _ in range(3)]
    for _ in range(cfg.throughput_repeats):
        for m in models:
            made = []
            seconds = time_call(lambda: made.append(m.generate(prompts[m.spec], cfg.new_tokens)), dev)
            tput[m.spec].append(made[0] / seconds)
    out = {}
    for m in models:
        out[m.spec] = {"latency_ms": statistics.median(lat[m.spec]), "latency_ms_spread": [min(lat[m.spec]), max(lat[m.spec])],
                       "latency_rounds": cfg.repeats, "throughput_tok_s": statistics.median(tput[m.spec]),
                       "throughput_spread": [min(tput[m.spec]), max(tput[m.spec])],
                       "throughput_rounds": cfg.throughput_repeats}
        if dev.type == "cpu":
            out[m.spec]["latency_check_ms"] = independent_latency_ms(m, ids[m.spec])
        else:  # this model's own peak: one throughput call after the counters are reset
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            m.generate(prompts[m.spec], cfg.new_tokens)
            out[m.spec]["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def run_bench(cfg: BenchConfig) -> dict:
    """Every figure of every model in cfg.models, side by side; written to cfg.out when given."""
    if not cfg.models:
        raise UsageError("the benchmark needs at least one model: --model SPEC (repeat for a baseline)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gpu = resolve_device(cfg.device)
    gpu = gpu if gpu.type == "cuda" else None
    torch.manual_seed(0)
    models = [BenchModel(s) for s in cfg.models]
    report = {"machine": machine_info(), "torch_threads": torch.get_num_threads(), "device": "cpu",
              "kpi_device": "cpu", "protocol": {**PROTOCOL, "warmup": "one round per model before the timed rounds"},
              "decode_loop": DECODE_LOOP, "candidate": cfg.models[0], "baseline": cfg.models[-1], "models": {}}
    figures = {m.spec: {**m.params(), "trained": m.trained} for m in models}
    for spec, f in measure(models, cfg).items():
        figures[spec].update(f)
    if gpu is not None:
        dtype = resolve_dtype(cfg.dtype, gpu)
        on_gpu = [BenchModel(s, gpu, dtype) for s in cfg.models]
        for spec, f in measure(on_gpu, cfg).items():
            figures[spec]["gpu"] = {**f, "device": torch.cuda.get_device_name(gpu), "dtype": dtype_name(dtype)}
        del on_gpu
        report["gpu_device"] = str(gpu)
    if not cfg.skip_train:
        for m in models:
            figures[m.spec].update(train_peak_rss(m.spec, cfg.train_steps, cfg.data_path, cfg.batch, cfg.seq_len))
    report["models"] = figures
    if cfg.out:
        atomic_write_json(Path(cfg.out), report)
    return report


def format_report(report: dict) -> str:
    m = report["machine"]
    cand, base = report["candidate"], report["baseline"]
    lines = [f"efficiency on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB, GPU: {m['gpu']}), "
             f"torch threads {report['torch_threads']}; KPI device: CPU" + (", GPU column labelled" if "gpu_device" in
                                                                            report else ""),
             f"  median [min-max] of {_rounds(report)}; decoding: {report.get('decode_loop', 'generate()')}"]
    for spec, f in report["models"].items():
        lat_check = 100 * (f["latency_check_ms"] - f["latency_ms"]) / f["latency_ms"]
        lines.append(f"  {spec:16s} params {f['params_total'] / 1e6:7.2f}M total, {f['params_nonembedding'] / 1e6:7.2f}M "
                     f"non-embedding{'' if f['trained'] else ' (untrained weights)'}")
        lines.append(f"  {'':16s} latency {f['latency_ms']:8.1f} ms [{f['latency_ms_spread'][0]:.1f}-"
                     f"{f['latency_ms_spread'][1]:.1f}]  (torch.utils.benchmark: {f['latency_check_ms']:.1f} ms, "
                     f"{lat_check:+.0f}%)")
        if "gpu" in f:
            g = f["gpu"]
            lines.append(f"  {'':16s} GPU ({g['device']}, {g['dtype']}): latency {g['latency_ms']:.2f} ms "
                         f"[{g['latency_ms_spread'][0]:.2f}-{g['latency_ms_spread'][1]:.2f}], throughput "
                         f"{g['throughput_tok_s']:.0f} tok/s [{g['throughput_spread'][0]:.0f}-"
                         f"{g['throughput_spread'][1]:.0f}], peak CUDA {g['peak_cuda_mb']:.0f} MB")
        lines.append(f"  {'':16s} throughput {f['throughput_tok_s']:8.1f} tok/s [{f['throughput_spread'][0]:.1f}-"
                     f"{f['throughput_spread'][1]:.1f}]" + (f"  peak train RSS {f['peak_train_rss_mb']:.0f} MB "
                                                            f"({f['train_steps']} steps, "
                                                            f"{f['train_step_s_median']:.1f} s/step)"
                                                            if "peak_train_rss_mb" in f else ""))
    return "\n".join(lines)


def _rounds(report: dict) -> str:
    f = next(iter(report["models"].values()), {})
    return (f"{f.get('latency_rounds', '?')} latency rounds x 3 passes, {f.get('throughput_rounds', '?')} throughput "
            "rounds, after a warm-up round")


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
