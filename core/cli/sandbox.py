"""The sandbox as a service: `sandbox-broker`, the root process that starts sandbox workers for
an app and jobs that run unprivileged (the container's set-up)."""
from __future__ import annotations

import grp


def _add_broker(sub) -> None:
    p = sub.add_parser("sandbox-broker", help="serve root-started sandbox workers to unprivileged jobs (containers)",
                       description="Run as root before the app drops its privileges (the image's entrypoint does): "
                                   "each connection to SOCKET gets one sandbox worker with its own uid, namespaces "
                                   "and read-only mounts, killed when the connection closes. Jobs use it when "
                                   "HRM_GATE_SANDBOX_SOCKET names the socket.")
    p.add_argument("--socket", required=True, metavar="PATH", help="the unix socket to listen on")
    p.add_argument("--group", metavar="NAME", help="the group (name or gid) allowed to connect (the socket is mode 0660)")
    p.add_argument("--max-workers", type=int, default=32, help="workers served at once, all jobs together")


def _cmd_broker(args) -> int:
    from core.base.errors import UsageError
    from core.sandbox.broker import Broker
    try:
        gid = None if not args.group else int(args.group) if args.group.isdigit() else grp.getgrnam(args.group).gr_gid
    except KeyError:
        raise UsageError(f"no group named {args.group!r} on this machine; create it or leave --group out") from None
    Broker(args.socket, max_workers=args.max_workers, group=gid).serve()
    return 0


COMMANDS = {"sandbox-broker": (_add_broker, _cmd_broker)}
