"""python -m core wandb-follow: the live W&B run beside a train or eval job (core.publish.live)."""
from __future__ import annotations

from core.publish.live import follow


def _add_follow(sub) -> None:
    p = sub.add_parser("wandb-follow", help="follow a run directory into a live W&B run until its job ends "
                                            "(started by the pipeline, and by train/eval with --wandb)")
    p.add_argument("run_dir")
    p.add_argument("--pid", type=int, required=True, help="the job's process: its death ends the W&B run as crashed")
    p.add_argument("--wandb", choices=("auto", "offline", "online"), default="auto")
    p.add_argument("--group", help="W&B group (the pipeline's name)")
    p.add_argument("--name", help="W&B run name (default: kind and model)")
    p.add_argument("--tag", action="append", default=[], help="an extra tag (repeatable)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between reads of the run directory")


def _cmd_follow(args) -> int:
    info = follow(args.run_dir, args.pid, args.wandb, group=args.group, name=args.name, tags=args.tag,
                  poll_s=args.poll)
    if info:
        print(f"W&B ({info['mode']}) {info['name']}: {info['status']}; {info['url'] or info['dir']}")
    return 0


COMMANDS = {"wandb-follow": (_add_follow, _cmd_follow)}
