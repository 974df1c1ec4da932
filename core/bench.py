"""Efficiency benchmarks. For now: HRM decoding with and without the KV cache (issue 5 adds the
params / latency / throughput / peak-RAM comparison)."""
from __future__ import annotations

import statistics
import time

import torch

from core.machine import machine_info


@torch.no_grad()
def decode_tokens_per_s(model, context: int, new_tokens: int, use_cache: bool) -> float:
    """Greedy decoding of new_tokens after `context` prompt tokens at batch 1 (prefill not timed)."""
    ids = torch.randint(0, model.cfg.vocab_size, (1, context))
    if use_cache:
        cache = model.new_cache(1, context + new_tokens)
        logits = model(ids, cache)[:, -1]
        started = time.perf_counter()
        for _ in range(new_tokens):
            nxt = logits.argmax(-1, keepdim=True)
            logits = model(nxt, cache)[:, -1]
    else:
        logits = model(ids)[:, -1]
        started = time.perf_counter()
        for _ in range(new_tokens):
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
            logits = model(ids)[:, -1]
    return new_tokens / (time.perf_counter() - started)


def run_bench_kv(model_spec: str = "hrm:27m", context: int = 512, new_tokens: int = 32, repeats: int = 3) -> dict:
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
