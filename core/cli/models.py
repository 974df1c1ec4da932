"""Models: train, bench, bench-kv."""
from __future__ import annotations

import os
from pathlib import Path

from core.cli.common import add_wandb_flag, track
from core.errors import UsageError


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train our HRM (or fine-tune a causal LM) on MBPP's train split",
                       description="Trains on MBPP tasks 601-974 with the evaluation prompt template, validates on "
                                   "511-600, writes metrics.jsonl (one line per step) and checkpoints into --run-dir. "
                                   "Rerunning the same command resumes from the last checkpoint. For data parallel "
                                   "runs: torchrun --nproc_per_node N -m core train ...")
    p.add_argument("--model", required=True, help="hrm:27m, hrm:tiny, hrm:PATH, hf:DIR or hf-arch:NAME")
    p.add_argument("--run-dir", required=True, metavar="DIR")
    p.add_argument("--dataset", default="mbpp", help="mbpp | mbpp-sanitized")
    p.add_argument("--data-path", metavar="FILE")
    p.add_argument("--prompt", help="mbpp-3shot (default) | mbpp-docstring")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8, help="global batch in sequences (default 8)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=50, help="0: no checkpoints")
    p.add_argument("--eval-every", type=int, default=0, help="validation loss every N steps (0: never)")
    p.add_argument("--segments", type=int, help="HRM deep-supervision segments")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast where the GPU supports it, else fp32")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    add_wandb_flag(p)


def _cmd_train(args) -> int:
    from core.train import TrainConfig, train
    if args.steps < 1 or args.batch < 1 or args.seq_len < 2:
        raise UsageError("--steps and --batch must be >= 1 and --seq-len >= 2")
    cfg = TrainConfig(model=args.model, run_dir=args.run_dir, dataset=args.dataset, data_path=args.data_path,
                      prompt=args.prompt, steps=args.steps, batch=args.batch, seq_len=args.seq_len, lr=args.lr,
                      warmup=args.warmup, weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, segments=args.segments,
                      precision=args.precision, threads=args.threads)
    s = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {args.model} for {s['steps']} steps ({s['precision']}, {s['world_size']} process(es)): loss "
              f"{s['first_loss']:.4f} -> {s['last_loss']:.4f}, peak RSS {s['peak_rss_mb']:.0f} MB; run {args.run_dir}")
        track(args.run_dir, args.wandb)
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="efficiency benchmark: params, latency, throughput, peak training RAM",
                       description="Measures every --model side by side in one run (repetitions interleaved) and "
                                   "prints the seed's efficiency rows for the first model (candidate) against the last "
                                   "(baseline). Definitions: DESIGN.md and core/bench.py.")
    p.add_argument("--model", action="append", required=True, help="repeat: --model hrm:27m --model hf-arch:gpt2")
    p.add_argument("--out", metavar="FILE", help="write bench.json here")
    p.add_argument("--repeats", type=int, default=5, help="latency rounds (3 passes per model each)")
    p.add_argument("--throughput-repeats", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=2, help="steps of the training loop whose peak RSS is measured")
    p.add_argument("--skip-train", action="store_true", help="leave peak training RAM unmeasured")
    p.add_argument("--data-path", default="../shared/data/mbpp/mbpp.jsonl")
    p.add_argument("--new-tokens", type=int, default=256)
    add_wandb_flag(p)


def _cmd_bench(args) -> int:
    from core.bench import run_bench
    from core.tracking import log_bench
    report = run_bench(args.model, args.out, args.repeats, args.throughput_repeats, args.train_steps, args.data_path,
                       new_tokens=args.new_tokens, skip_train=args.skip_train)
    info = log_bench(report, args.wandb, Path(args.out).parent if args.out else ".")
    if info:
        print(f"W&B ({info['mode']}): {info['url'] or info['dir']}")
    return 0


def _add_bench_kv(sub) -> None:
    p = sub.add_parser("bench-kv", help="HRM decoding tokens/s with and without the KV cache")
    p.add_argument("--model", default="hrm:27m")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)


def _cmd_bench_kv(args) -> int:
    from core.bench import run_bench_kv
    run_bench_kv(args.model, args.context, args.new_tokens, args.repeats)
    return 0


COMMANDS = {"train": (_add_train, _cmd_train), "bench": (_add_bench, _cmd_bench), "bench-kv": (_add_bench_kv, _cmd_bench_kv)}
