"""Argument types and helpers the command modules share."""
from __future__ import annotations

import os

from core.base.config import parse_ints


k_values = parse_ints  # --k 1,10


def add_wandb_flag(p) -> None:
    p.add_argument("--wandb", choices=("auto", "off", "offline", "online"), default="auto",
                   help="W&B logging at the end: auto = online when WANDB_API_KEY is set, else none (default); "
                        "offline writes a local run to sync later")


def wandb_wanted(setting: str) -> bool:
    """A run logs to W&B only when asked, or when a key says the user has an account: W&B costs seconds
    of start-up that a user scoring a samples file did not ask for (the pipeline's W&B step is its own)."""
    return setting in ("offline", "online") or (setting == "auto" and bool(os.environ.get("WANDB_API_KEY")))


def track(run_dir, setting) -> None:
    if not wandb_wanted(setting):
        return
    from core.publish.tracking import log_run
    info = log_run(run_dir, setting)
    print(f"  W&B ({info['mode']}): {info['url'] or info['dir']}")
