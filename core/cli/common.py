"""Argument types and helpers the command modules share."""
from __future__ import annotations

import argparse


def k_values(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes numbers separated by commas, e.g. 1,10; got {text!r}") from None
    if any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError("every k must be >= 1")
    return ks


def add_wandb_flag(p) -> None:
    p.add_argument("--wandb", choices=("auto", "off", "offline", "online"), default="auto",
                   help="W&B logging at the end: auto = offline unless WANDB_API_KEY is set (default)")


def track(run_dir, setting) -> None:
    from core.publish.tracking import log_run, wandb_mode
    if wandb_mode(setting) is None:
        return
    info = log_run(run_dir, setting)
    print(f"  W&B ({info['mode']}): {info['url'] or info['dir']}")
