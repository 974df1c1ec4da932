"""Models: train, bench, bench-kv, convert-hrm."""
from __future__ import annotations

import os
from pathlib import Path

from core.cli.common import add_wandb_flag, tracked, wandb_wanted
from core.base.config import add_arguments, from_args, help_of
from core.lab.config import BenchConfig, TrainConfig


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train our HRM (or fine-tune a causal LM) on MBPP's train split",
                       description="Trains on MBPP tasks 601-974 with the evaluation prompt template, validates on "
                                   "511-600, writes metrics.jsonl (one line per step) and checkpoints into --run-dir. "
                                   "Rerunning the same command resumes from the last checkpoint. For data parallel "
                                   "runs: torchrun --nproc_per_node N -m core train ...")
    add_arguments(p, TrainConfig)
    p.add_argument("--run-dir", required=True, metavar="DIR", help=help_of(TrainConfig, "run_dir"))
    add_wandb_flag(p)


def _cmd_train(args) -> int:
    from core.lab.train import train
    cfg = from_args(TrainConfig, args, run_dir=args.run_dir)
    with tracked(args.run_dir, args.wandb):
        s = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {args.model} for {s['steps']} steps ({s['precision']}, {s['world_size']} process(es)): loss "
              f"{s['first_loss']:.4f} -> {s['last_loss']:.4f}, peak RSS {s['peak_rss_mb']:.0f} MB; run {args.run_dir}")
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="efficiency benchmark: params, latency, throughput, peak training RAM",
                       description="Measures every --model side by side in one run (repetitions interleaved) and "
                                   "prints the seed's efficiency rows for the first model (candidate) against the last "
                                   "(baseline). Definitions: DESIGN.md and core/lab/bench.py.")
    p.add_argument("--model", action="append", required=True, dest="models", metavar="SPEC",
                   help="repeat: --model hrm:27m --model hf-arch:gpt2 (" + help_of(BenchConfig, "models") + ")")
    add_arguments(p, BenchConfig)
    add_wandb_flag(p)


def _cmd_bench(args) -> int:
    from core.decide.kpi import format_efficiency
    from core.lab.bench import format_report, run_bench
    from core.publish.tracking import log_bench
    report = run_bench(from_args(BenchConfig, args, models=args.models))
    print(format_report(report))
    if report["candidate"] != report["baseline"]:
        print("\n" + format_efficiency(report))
    info = log_bench(report, args.wandb, Path(args.out).parent if args.out else ".") if wandb_wanted(args.wandb) else None
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
    from core.lab.bench import run_bench_kv
    run_bench_kv(args.model, args.context, args.new_tokens, args.repeats)
    return 0


def _add_convert(sub) -> None:
    p = sub.add_parser("convert-hrm", help="import a checkpoint of the reference HRM code (sapientinc/HRM) as hrm:DST",
                       description="Reads SRC (a step_N file or its checkpoint directory, with all_config.yaml) and "
                                   "writes an hrm:DST checkpoint: names mapped, compile prefixes stripped, the untied "
                                   "output head kept, the halting head dropped (with a note).")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--tokenizer", default="hrm-bpe-16k", help="hrm-bpe-16k, gpt2 or a tokenizer.json (copied into DST)")
    p.add_argument("--max-seq-len", type=int, default=2048, help="positions of the converted model (default 2048)")
    for flag in ("heads", "h-cycles", "l-cycles"):
        p.add_argument(f"--{flag}", type=int, default=None, help="when all_config.yaml does not say")


def _cmd_convert(args) -> int:
    from core.models.convert import convert_reference
    notes = convert_reference(args.src, args.dst, args.tokenizer, args.max_seq_len, heads=args.heads,
                              h_cycles=args.h_cycles, l_cycles=args.l_cycles)
    print(f"wrote hrm:{args.dst}")
    for note in notes:
        print(f"  note: {note}")
    return 0


COMMANDS = {"train": (_add_train, _cmd_train), "bench": (_add_bench, _cmd_bench), "bench-kv": (_add_bench_kv, _cmd_bench_kv),
            "convert-hrm": (_add_convert, _cmd_convert)}
