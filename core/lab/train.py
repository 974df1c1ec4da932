"""Training: our HRM from scratch (or fine-tuning a transformers causal LM) on MBPP's train split;
with --corpus DIR, pretraining on a corpus instead (core.lab.pretrain).

Examples are the evaluation prompt (same template) followed by the reference solution and the
template's end marker; the loss covers the solution tokens only. Validation uses tasks 511-600.
AdamW, linear warm-up then cosine decay, gradient clipping, bf16 autocast where the device
supports it (CUDA), checkpoints, one metrics.jsonl line per step.

Deterministic for a seed: the batch of step s is drawn from a generator seeded by (seed, s), so
a run resumed from its last checkpoint (same command) repeats exactly the steps it lacks;
metrics lines past the checkpoint are dropped first, so the file never holds a step twice.
A non-finite loss ends the run with status failed and says so.

Data parallel: `torchrun --nproc_per_node N -m core train ...` splits every global batch across
N processes (gloo on CPU, nccl on GPU); the loss is normalised by the global token count, so the
gradients, and so the loss curve, equal one process on the same global batch.
"""
from __future__ import annotations

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
import psutil
import torch
import torch.nn.functional as F

from core.lab.config import TrainConfig
from core.tasks import data

from core.tasks import prompts
from core.base.errors import GateError, ModelSpecError
from core.base.machine import git_commit, machine_info, now_iso, package_versions
from core.models import parse_spec
from core.base.store import JsonlAppender, NullAppender, replace_dir, RunDir, atomic_write_json, atomic_write_jsonl, read_jsonl

log = logging.getLogger(__name__)
IGNORE = -100


class TrainingDiverged(GateError):
    pass


# ---------------------------------------------------------------- model and tokenizer
class Trainable:
    """A model to train plus how to encode text for it and how to save it."""

    def __init__(self, kind: str, model, encode, eos_id: int, pad_id: int, save, meta: dict):
        self.kind, self.model, self.encode = kind, model, encode
        self.eos_id, self.pad_id, self.save, self.meta = eos_id, pad_id, save, meta

    def logits(self, ids: torch.Tensor) -> list[torch.Tensor]:
        if self.kind == "hrm":
            return self.model(ids, all_segments=True)
        return [self.model(input_ids=ids).logits]


def build_trainable(spec_text: str, cfg: TrainConfig, resume_dir: Path | None) -> Trainable:
    from core.models.hrm import HRM, PRESETS, load_checkpoint, preset, save_checkpoint
    from core.models.tokenizer import load_tokenizer
    spec = parse_spec(spec_text)
    if spec.kind == "hrm":
        if resume_dir is not None:
            model, meta = load_checkpoint(resume_dir)
            tok = load_tokenizer(meta.get("tokenizer"))
        elif spec.arg in PRESETS:
            tok = load_tokenizer()
            overrides = {"vocab_size": tok.vocab_size, **({"segments": cfg.segments} if cfg.segments else {})}
            torch.manual_seed(cfg.seed)
            model = HRM(preset(spec.arg, **overrides))
            meta = {}
        else:
            model, meta = load_checkpoint(spec.arg)
            tok = load_tokenizer(meta.get("tokenizer"))
        base = {"tokenizer": tok.name, "trained_steps": meta.get("trained_steps", 0)}

        def save(directory, steps):
            save_checkpoint(_unwrap(model), directory, {**base, "trained_steps": base["trained_steps"] + steps})
        return Trainable("hrm", model, tok.encode, tok.eos_id, tok.eos_id, save, base)
    if spec.kind in ("hf", "hf-arch"):
        from core.models.hf import HFGenerator, arch_config
        if spec.kind == "hf-arch" and arch_config(spec.arg).is_encoder_decoder:
            raise ModelSpecError(f"{spec_text}: training seq2seq models is not supported; use a causal LM")
        if resume_dir is not None:
            gen = HFGenerator.from_spec("hf", str(resume_dir))
        else:
            torch.manual_seed(cfg.seed)
            gen = HFGenerator.from_spec(spec.kind, spec.arg)
        if gen.seq2seq:
            raise ModelSpecError(f"{spec_text}: training seq2seq models is not supported; use a causal LM")
        model, tok = gen.model.train(), gen.tok

        def save(directory, steps):
            _unwrap(model).save_pretrained(directory)
            tok.save_pretrained(directory)
        return Trainable("hf", model, lambda s: tok.encode(s, add_special_tokens=False), tok.eos_token_id,
                         tok.pad_token_id, save, {})
    raise ModelSpecError(f"cannot train {spec_text}: use hrm:27m, hrm:tiny, hrm:PATH, hf:DIR or hf-arch:NAME")


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


# ---------------------------------------------------------------- data
def build_examples(trainable: Trainable, dataset: data.Dataset, template: prompts.Template, seq_len: int):
    """(input ids, labels) per task: prompt tokens masked, solution + end marker + EOS learned."""
    end = "\n[DONE]" if template.name == "mbpp-3shot" else ""
    out = []
    for task in dataset.tasks:
        prompt = trainable.encode(template.render(task, dataset))
        target = trainable.encode(task.reference.replace("\r\n", "\n").strip() + end) + [trainable.eos_id]
        ids = (prompt + target)[-(seq_len + 1):]
        labels = ([IGNORE] * len(prompt) + target)[-(seq_len + 1):]
        out.append((ids, labels))
    return out


def collate(examples, seq_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.full((len(examples), seq_len), pad_id, dtype=torch.long)
    y = torch.full((len(examples), seq_len), IGNORE, dtype=torch.long)
    for i, (ids, labels) in enumerate(examples):
        n = len(ids) - 1
        x[i, :n] = torch.tensor(ids[:-1])
        y[i, :n] = torch.tensor(labels[1:])
    return x, y


def batch_indices(seed: int, step: int, n_examples: int, batch: int) -> np.ndarray:
    rng = np.random.default_rng([seed, step])
    return rng.choice(n_examples, size=batch, replace=n_examples < batch)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step <= cfg.warmup:
        return cfg.lr * step / max(1, cfg.warmup)
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ---------------------------------------------------------------- distributed
def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return None, 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist, dist.get_rank(), world


def _all_sum(dist, value: torch.Tensor) -> torch.Tensor:
    if dist is not None:
        dist.all_reduce(value)
    return value


# ---------------------------------------------------------------- the loop
def _loss(trainable: Trainable, x, y, global_tokens: float, world: int, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    with autocast():
        outs = trainable.logits(x)
    losses = [F.cross_entropy(o.float().reshape(-1, o.shape[-1]), y.reshape(-1), ignore_index=IGNORE, reduction="sum")
              for o in outs]
    summed = sum(losses) / len(losses)
    # DDP averages gradients over processes; scaling by world makes that a sum over the global batch
    return summed * world / global_tokens, summed.detach()


@torch.no_grad()
def validation_loss(trainable, examples, cfg, autocast) -> float:
    trainable.model.eval()
    total = tokens = 0.0
    for start in range(0, min(len(examples), cfg.val_batches * cfg.batch), cfg.batch):
        x, y = collate(examples[start:start + cfg.batch], cfg.seq_len, trainable.pad_id)
        with autocast():
            logits = trainable.logits(x.to(_device()))[-1]
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.to(_device()).reshape(-1),
                                 ignore_index=IGNORE, reduction="sum").item()
        tokens += (y != IGNORE).sum().item()
    trainable.model.train()
    return total / max(tokens, 1)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if use_bf16:
        return lambda: torch.autocast(device_type=_device().type, dtype=torch.bfloat16), "bf16"
    import contextlib
    return contextlib.nullcontext, "fp32"


def validation_pass_at_1(trainable: Trainable, run: RunDir, step: int, cfg: TrainConfig) -> float:
    """pass@1 of the model as it is at `step`: its weights saved, then a real eval (greedy, n=1) of the
    validation split's first cfg.pass_tasks tasks, scored in the sandbox, in RUN_DIR/pass-at-1/step-N/
    (the weights removed afterwards; samples and results kept)."""
    from core.evaluation.config import EvalConfig
    from core.evaluation.evaluate import run_eval
    out = run.file("pass-at-1") / f"step-{step}"
    weights = out / "model"
    shutil.rmtree(out, ignore_errors=True)
    trainable.save(weights, step)
    try:
        summary = run_eval(EvalConfig(run_dir=str(out / "eval"), model=f"{trainable.kind}:{weights}",
                                      dataset=cfg.dataset, data_path=cfg.data_path, split="validation",
                                      limit=cfg.pass_tasks, n=1, temperature=0.0, ks=(1,), prompt=cfg.prompt,
                                      max_new_tokens=cfg.pass_new_tokens, progress=False))
    finally:
        shutil.rmtree(weights, ignore_errors=True)
        trainable.model.train()
    return float(summary["pass_at_k"]["1"])


def _save(trainable, optimizer, run: RunDir, step: int, cfg: TrainConfig) -> None:
    def fill(tmp: Path) -> None:
        trainable.save(tmp, step)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {"step": step, "config": asdict(cfg)})
    replace_dir(run.file("checkpoint"), fill)


def train(cfg: TrainConfig) -> dict:
    if cfg.corpus:
        from core.lab.pretrain import pretrain
        return pretrain(cfg)
    dist, rank, world = _dist()
    if cfg.batch % world:
        raise GateError(f"--batch {cfg.batch} must be divisible by the number of processes ({world})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir(cfg.run_dir)
    ckpt = run.file("checkpoint")
    resume = ckpt if (ckpt / "state.json").exists() else None
    dataset = data.load_dataset(cfg.dataset, cfg.data_path, "train")
    val_set = data.load_dataset(cfg.dataset, cfg.data_path, "validation")
    template = prompts.get_template(cfg.prompt, cfg.dataset)
    trainable = build_trainable(cfg.model, cfg, resume)
    device = _device()
    trainable.model.to(device).train()
    examples = build_examples(trainable, dataset, template, cfg.seq_len)
    val_examples = build_examples(trainable, val_set, template, cfg.seq_len)
    optimizer = torch.optim.AdamW(trainable.model.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                                  weight_decay=cfg.weight_decay)
    start = 0
    if resume is not None:
        state = json.loads((resume / "state.json").read_text())
        start = state["step"]
        optimizer.load_state_dict(torch.load(resume / "optimizer.pt", map_location=device, weights_only=True))
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel
        trainable.model = DistributedDataParallel(trainable.model)
    autocast, precision = _autocast(cfg.precision)
    identity = {"kind": "train", "config": {k: v for k, v in asdict(cfg).items() if k not in ("run_dir", "threads", "checkpoint_every")},
                "world": world}
    if rank == 0:
        params = sum(p.numel() for p in trainable.model.parameters())
        run.claim(identity, {"run_id": run.run_id, "kind": "train", "model": cfg.model, "trained": True,
                             "dataset": {"name": dataset.name, "split": "train", "sha256": dataset.sha256,
                                         "n_tasks": len(dataset.tasks), "validation_tasks": len(val_set.tasks)},
                             "protocol": {**asdict(cfg), "prompt": template.name, "precision": precision,
                                          "world_size": world, "optimizer": "AdamW(0.9, 0.95)",
                                          "schedule": "linear warm-up, cosine to min_lr_ratio"},
                             "params": params, "seeds": {"train": cfg.seed}, "git_commit": git_commit(),
                             "packages": package_versions(), "machine": machine_info(), "started_at": now_iso(),
                             "device": str(device)})
        # steps after the checkpoint will be recomputed: drop their lines so none appears twice
        rows = read_jsonl(run.file("metrics.jsonl"), repair=True)
        if any(r.get("step", 0) > start for r in rows):
            atomic_write_jsonl(run.file("metrics.jsonl"), [r for r in rows if r.get("step", 0) <= start])
        if start:
            log.info("resuming %s from step %d", run.path, start)
    process = psutil.Process()
    try:
        with JsonlAppender(run.file("metrics.jsonl")) if rank == 0 else NullAppender() as metrics:
            for step in range(start + 1, cfg.steps + 1):
                t0 = time.perf_counter()
                idx = batch_indices(cfg.seed, step, len(examples), cfg.batch)[rank::world]
                x, y = collate([examples[i] for i in idx], cfg.seq_len, trainable.pad_id)
                x, y = x.to(device), y.to(device)
                global_tokens = float(_all_sum(dist, torch.tensor(float((y != IGNORE).sum()))).item())
                lr = lr_at(step, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss, summed = _loss(trainable, x, y, global_tokens, world, autocast)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable.model.parameters(), cfg.grad_clip))
                step_loss = float(_all_sum(dist, summed.clone()).item()) / global_tokens
                if not math.isfinite(step_loss) or not math.isfinite(grad_norm):
                    raise TrainingDiverged(f"training diverged at step {step} (loss {step_loss}, grad norm {grad_norm}); "
                                           f"lower --lr (now {cfg.lr:g}) or raise --warmup, then start a new run")
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                row = {"step": step, "time": now_iso(), "loss": step_loss, "lr": lr, "grad_norm": grad_norm,
                       "tokens_per_s": global_tokens / dt, "seq_tokens_per_s": cfg.batch * cfg.seq_len / dt,
                       "rss_mb": process.memory_info().rss / 2**20}
                if device.type == "cuda":
                    row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
                if cfg.eval_every and step % cfg.eval_every == 0:
                    row["val_loss"] = validation_loss(trainable, val_examples, cfg, autocast)
                if rank == 0 and cfg.pass_every and step % cfg.pass_every == 0:
                    row["pass_at_1"] = validation_pass_at_1(trainable, run, step, cfg)
                if rank == 0:
                    metrics.append(row)
                    if cfg.checkpoint_every > 0 and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                        _save(trainable, optimizer, run, step, cfg)
    except TrainingDiverged as exc:
        if rank == 0:
            run.update_manifest(status="failed", ended_at=now_iso(), error=str(exc), failure="diverged")
        raise
    except KeyboardInterrupt:
        if rank == 0:
            run.update_manifest(status="cancelled", ended_at=now_iso())
        raise
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {"steps": cfg.steps, "peak_rss_mb": peak_mb, "precision": precision, "world_size": world}
    if rank == 0:
        rows = read_jsonl(run.file("metrics.jsonl"))
        summary.update(first_loss=rows[0]["loss"] if rows else None, last_loss=rows[-1]["loss"] if rows else None)
        atomic_write_json(run.file("run_summary.json"), {"run_id": run.run_id, "kind": "train", "training": summary})
        run.update_manifest(status="done", ended_at=now_iso(), peak_rss_mb=peak_mb)
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return summary

