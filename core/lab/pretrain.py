"""Pretraining on a corpus (`train --corpus DIR`): one loop for our HRM and for a GPT-2 architecture.

Both read the same packed tokens with the corpus's tokenizer: the stream is cut into windows of
seq_len + 1 tokens, and the global batch of step s holds windows (s-1)*batch ... s*batch - 1
(wrapping round at the end of the corpus), so the token offset of a step is a function of the
step alone and a run resumed from its checkpoint after SIGKILL reads exactly the tokens it lacked.
Each process reads its own contiguous shard of every global batch; with gradient accumulation
each shard is cut into `accum` micro-batches. Every position is a target, the loss is normalised
by the global token count, so any number of processes and micro-batches gives the gradient of one
process on the whole batch.

Compute budget: before the first step, one real training step (forward and backward on a real
micro-batch, the optimizer left alone) runs under torch.utils.flop_counter.FlopCounterMode, so
what is counted is what executes (HRM's block applications under no_grad and its one-step
gradient included). FLOPs per optimizer step = that count x accum x processes; with --flops the
run takes floor(budget / FLOPs per step) steps and the cosine schedule spans exactly those.

On CUDA: LOCAL_RANK picks the device (torch.cuda.set_device), DDP with device_ids, bf16 autocast,
fused AdamW, TF32 matmuls, optional torch.compile. The loss stays on the device between metrics
lines (--log-every K): the host syncs once per line, where tokens/s and MFU are measured.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.base.errors import GateError, ModelSpecError, UsageError
from core.base.machine import git_commit, machine_info, now_iso, package_versions
from core.base.store import JsonlAppender, NullAppender, replace_dir, RunDir, atomic_write_json, atomic_write_jsonl, read_jsonl
from core.lab.config import TrainConfig
from core.lab.corpus import open_tokens, read_manifest
from core.models import parse_spec

log = logging.getLogger(__name__)
# dense bf16 peak per device, for MFU
PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0,
               "4090": 165.2, "3090": 71.0, "V100": 125.0, "T4": 65.0}


class TrainingDiverged(GateError):
    pass


# ---------------------------------------------------------------- models
class Model:
    """An architecture to pretrain: its module, how to get logits, how to save it."""

    def __init__(self, kind: str, module, tokenizer, save):
        self.kind, self.module, self.tokenizer, self.save = kind, module, tokenizer, save

    def logits(self, module, ids: torch.Tensor) -> list[torch.Tensor]:
        if self.kind == "hrm":
            return module(ids, all_segments=True)
        return [module(input_ids=ids).logits]


def build_model(spec_text: str, cfg: TrainConfig, corpus: dict, resume: Path | None) -> Model:
    from core.models.tokenizer import load_tokenizer
    tok = load_tokenizer(corpus["tokenizer"])
    spec = parse_spec(spec_text)
    torch.manual_seed(cfg.seed)
    if spec.kind == "hrm":
        from core.models.hrm import HRM, PRESETS, load_checkpoint, preset, save_checkpoint
        if resume is not None:
            module, _ = load_checkpoint(resume)
        elif spec.arg in PRESETS:
            overrides = {"vocab_size": corpus["vocab_size"], "max_seq_len": max(cfg.seq_len, PRESETS[spec.arg].max_seq_len),
                         **({"segments": cfg.segments} if cfg.segments else {})}
            module = HRM(preset(spec.arg, **overrides))
        else:
            raise ModelSpecError(f"--corpus pretrains from scratch: use an HRM preset (hrm:27m, hrm:tiny), not {spec_text}")

        def save(directory, step):
            save_checkpoint(module, directory, {"tokenizer": tok.name, "trained_steps": step, "pretrained_on": cfg.corpus})
        return Model("hrm", module, tok, save)
    if spec.kind == "hf-arch":
        from transformers import AutoModelForCausalLM
        from core.models.hf import arch_config
        if resume is not None:
            module = AutoModelForCausalLM.from_pretrained(resume, local_files_only=True)
        else:
            conf = arch_config(spec.arg)
            if conf.is_encoder_decoder:
                raise ModelSpecError(f"{spec_text}: pretraining seq2seq models is not supported; use a causal LM")
            # the corpus's tokenizer; no dropout, so a step is a function of the weights and the tokens
            conf.update({"vocab_size": corpus["vocab_size"], "bos_token_id": tok.eos_id, "eos_token_id": tok.eos_id,
                         "pad_token_id": tok.eos_id})
            for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout", "hidden_dropout", "attention_dropout"):
                if hasattr(conf, name):
                    setattr(conf, name, 0.0)
            limit = getattr(conf, "n_positions", None) or getattr(conf, "max_position_embeddings", None)
            if limit is not None and limit < cfg.seq_len:
                raise UsageError(f"--seq-len {cfg.seq_len} exceeds {spec_text}'s {limit} positions; lower --seq-len")
            module = AutoModelForCausalLM.from_config(conf)

        def save(directory, step):
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()  # one bar per checkpoint would flood the log
            module.save_pretrained(directory, safe_serialization=True)
            tok.fast.save_pretrained(directory)
        return Model("hf", module, tok, save)
    raise ModelSpecError(f"--corpus trains hrm:PRESET or hf-arch:NAME from scratch, not {spec_text}")


# ---------------------------------------------------------------- data
class Windows:
    """Windows of seq_len + 1 tokens over a packed split; window i starts at token i * seq_len."""

    def __init__(self, tokens: np.ndarray, seq_len: int):
        self.tokens, self.seq_len = tokens, seq_len
        self.count = (len(tokens) - 1) // seq_len
        if self.count < 1:
            raise UsageError(f"the corpus split holds {len(tokens)} tokens, fewer than --seq-len {seq_len} + 1")

    def rows(self, first: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = [(first + j) % self.count for j in range(n)]
        block = np.stack([self.tokens[i * self.seq_len:i * self.seq_len + self.seq_len + 1] for i in idx])
        block = torch.from_numpy(block.astype(np.int64))
        return block[:, :-1], block[:, 1:]


def micro_batches(windows: Windows, step: int, cfg: TrainConfig, rank: int, world: int):
    """This process's micro-batches of optimizer step `step` (1-based)."""
    per_rank = cfg.batch // world
    micro = per_rank // cfg.accum
    first = (step - 1) * cfg.batch + rank * per_rank
    return [windows.rows(first + m * micro, micro) for m in range(cfg.accum)]


def lr_at(step: int, cfg: TrainConfig, total: int) -> float:
    if step <= cfg.warmup:
        return cfg.lr * step / max(1, cfg.warmup)
    progress = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ---------------------------------------------------------------- devices
def setup_distributed():
    """(dist or None, rank, world, device): LOCAL_RANK's GPU under torchrun, else the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if world == 1:
        return None, 0, 1, device
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist, dist.get_rank(), world, device


def autocast_for(precision: str, device: torch.device):
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if bf16:
        return (lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)), "bf16"
    return contextlib.nullcontext, "fp32"


def peak_flops(cfg: TrainConfig, device: torch.device) -> float | None:
    if cfg.peak_tflops:
        return cfg.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)


def _loss(model: Model, module, x, y, scale: float, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    with autocast():
        outs = model.logits(module, x)
    losses = [F.cross_entropy(o.float().reshape(-1, o.shape[-1]), y.reshape(-1), reduction="sum") for o in outs]
    summed = sum(losses) / len(losses)
    return summed * scale, summed.detach()


def _cpu_attention_formulas() -> dict:
    """The CPU's fused attention kernels, which torch's FLOP counter does not know (the CUDA ones it
    does): without them attention would count as free on the CPU only."""
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count
    aten = torch.ops.aten

    def forward(query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out, query, key, value)
    return {aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}


def measure_step_flops(model: Model, x, y, autocast) -> int:
    """FLOPs of one forward + backward on this micro-batch, counted as executed."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention_formulas())
    with counter:
        loss, _ = _loss(model, model.module, x, y, 1.0 / y.numel(), autocast)
        loss.backward()
    model.module.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


@torch.no_grad()
def validation_loss(model: Model, windows: Windows, cfg: TrainConfig, device, autocast) -> float:
    model.module.eval()
    total = tokens = 0.0
    n = min(windows.count, cfg.val_batches * cfg.batch)
    for first in range(0, n, cfg.batch):
        x, y = windows.rows(first, min(cfg.batch, n - first))
        with autocast():
            logits = model.logits(model.module, x.to(device))[-1]
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.to(device).reshape(-1),
                                 reduction="sum").item()
        tokens += y.numel()
    model.module.train()
    return total / tokens


def _save(model: Model, optimizer, run: RunDir, step: int, state: dict) -> None:
    def fill(tmp: Path) -> None:
        model.save(tmp, step)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {**state, "step": step})
    replace_dir(run.file("checkpoint"), fill)


# ---------------------------------------------------------------- the loop
def pretrain(cfg: TrainConfig) -> dict:
    dist, rank, world, device = setup_distributed()
    if cfg.batch % (world * cfg.accum):
        raise UsageError(f"--batch {cfg.batch} must be divisible by processes x --accum ({world} x {cfg.accum})")
    if cfg.log_every > 1 and cfg.checkpoint_every % cfg.log_every:
        raise UsageError(f"--checkpoint-every {cfg.checkpoint_every} must be a multiple of --log-every {cfg.log_every}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    corpus = read_manifest(cfg.corpus)
    train_w = Windows(open_tokens(cfg.corpus, "train"), cfg.seq_len)
    val_w = Windows(open_tokens(cfg.corpus, "val"), cfg.seq_len)
    run = RunDir(cfg.run_dir)
    ckpt = run.file("checkpoint")
    resume = ckpt if (ckpt / "state.json").exists() else None
    model = build_model(cfg.model, cfg, corpus, resume)
    model.module.to(device).train()
    autocast, precision = autocast_for(cfg.precision, device)

    x0, y0 = micro_batches(train_w, 1, cfg, rank, world)[0]
    micro_flops = measure_step_flops(model, x0.to(device), y0.to(device), autocast)
    step_flops = micro_flops * cfg.accum * world
    total = cfg.steps if cfg.flops is None else int(cfg.flops // step_flops)
    if total < 1:
        raise UsageError(f"--flops {cfg.flops:.3g} is less than one step ({step_flops:.3g} FLOPs); raise it or "
                         "lower --batch / --seq-len")
    tokens_per_step = cfg.batch * cfg.seq_len

    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.module.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                                  weight_decay=cfg.weight_decay, fused=fused)
    start = 0
    if resume is not None:
        start = json.loads((resume / "state.json").read_text())["step"]
        optimizer.load_state_dict(torch.load(resume / "optimizer.pt", map_location=device))
    module = model.module
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        module = torch.compile(module)
    peak = peak_flops(cfg, device)
    params = sum(p.numel() for p in model.module.parameters())
    identity = {"kind": "pretrain", "world": world,
                "config": {k: v for k, v in asdict(cfg).items() if k not in ("run_dir", "threads", "checkpoint_every")}}
    flop_info = {"per_step": step_flops, "per_micro_batch": micro_flops, "method": "torch.utils.flop_counter, "
                 "one real forward + backward", "budget": cfg.flops, "steps": total,
                 "total": step_flops * total}
    if rank == 0:
        run.claim(identity, {"run_id": run.run_id, "kind": "train", "model": cfg.model, "trained": True,
                             "dataset": {"name": "corpus", "path": str(cfg.corpus), "split": "train",
                                         "sha256": corpus["sha256"]["train"], "tokens": corpus["splits"]["train"]["tokens"],
                                         "validation_tokens": corpus["splits"]["val"]["tokens"],
                                         "tokenizer": corpus["tokenizer"]},
                             "protocol": {**asdict(cfg), "steps": total, "precision": precision, "world_size": world,
                                          "optimizer": f"AdamW(0.9, 0.95){' fused' if fused else ''}",
                                          "schedule": "linear warm-up, cosine to min_lr_ratio",
                                          "tokens_per_step": tokens_per_step},
                             "flops": flop_info, "params": params, "seeds": {"train": cfg.seed},
                             "git_commit": git_commit(), "packages": package_versions(), "machine": machine_info(),
                             "started_at": now_iso(), "device": str(device)})
        rows = read_jsonl(run.file("metrics.jsonl"), repair=True)
        if any(r.get("step", 0) > start for r in rows):
            atomic_write_jsonl(run.file("metrics.jsonl"), [r for r in rows if r.get("step", 0) <= start])
        if start:
            log.info("resuming %s from step %d (token offset %d)", run.path, start, start * tokens_per_step)
    scale = world / (cfg.batch * cfg.seq_len)  # DDP averages over processes: make it a sum over the global batch
    acc_loss = torch.zeros((), device=device)
    acc_steps, t_last = 0, time.perf_counter()
    try:
        with JsonlAppender(run.file("metrics.jsonl")) if rank == 0 else NullAppender() as metrics:
            for step in range(start + 1, total + 1):
                lr = lr_at(step, cfg, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batches = micro_batches(train_w, step, cfg, rank, world)
                for m, (x, y) in enumerate(batches):
                    sync = dist is None or m == len(batches) - 1
                    with (contextlib.nullcontext() if sync else module.no_sync()):
                        loss, summed = _loss(model, module, x.to(device, non_blocking=True),
                                             y.to(device, non_blocking=True), scale, autocast)
                        loss.backward()
                    acc_loss += summed
                grad_norm = torch.nn.utils.clip_grad_norm_(model.module.parameters(), cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                acc_steps += 1
                last = step == total
                if step % cfg.log_every and not last:
                    continue
                if dist is not None:
                    dist.all_reduce(acc_loss)
                step_loss = acc_loss.item() / (acc_steps * cfg.batch * cfg.seq_len)
                grad = float(grad_norm)
                if not math.isfinite(step_loss) or not math.isfinite(grad):
                    raise TrainingDiverged(f"training diverged at step {step} (loss {step_loss}, grad norm {grad}); "
                                           f"lower --lr (now {cfg.lr:g}) or raise --warmup, then start a new run")
                now = time.perf_counter()
                dt = now - t_last
                row = {"step": step, "time": now_iso(), "tokens": step * tokens_per_step, "flops": step * step_flops,
                       "loss": step_loss, "lr": lr, "grad_norm": grad,
                       "tokens_per_s": acc_steps * tokens_per_step / dt,
                       "mfu": acc_steps * step_flops / dt / (peak * world) if peak else None}
                if device.type == "cuda":
                    row["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
                if rank == 0 and ((cfg.eval_every and step % cfg.eval_every == 0) or last):
                    row["val_loss"] = validation_loss(model, val_w, cfg, device, autocast)
                if rank == 0:
                    metrics.append(row)
                    if cfg.checkpoint_every > 0 and (step % cfg.checkpoint_every == 0 or last):
                        _save(model, optimizer, run, step, {"tokens": step * tokens_per_step, "config": asdict(cfg)})
                acc_loss.zero_()
                acc_steps, t_last = 0, time.perf_counter()
    except TrainingDiverged as exc:
        if rank == 0:
            run.update_manifest(status="failed", ended_at=now_iso(), error=str(exc))
        raise
    except KeyboardInterrupt:
        if rank == 0:
            run.update_manifest(status="cancelled", ended_at=now_iso())
        raise
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {"steps": total, "peak_rss_mb": peak_mb, "precision": precision, "world_size": world,
               "flops_per_step": step_flops, "flops": step_flops * total, "tokens": total * tokens_per_step}
    if rank == 0:
        rows = read_jsonl(run.file("metrics.jsonl"))
        vals = [r for r in rows if r.get("val_loss") is not None]
        summary.update(first_loss=rows[0]["loss"] if rows else None, last_loss=rows[-1]["loss"] if rows else None,
                       val_loss=vals[-1]["val_loss"] if vals else None)
        atomic_write_json(run.file("run_summary.json"), {"run_id": run.run_id, "kind": "train", "training": summary})
        run.update_manifest(status="done", ended_at=now_iso(), peak_rss_mb=peak_mb)
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return summary

