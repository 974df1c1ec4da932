"""Live alerts: the reliability monitor's alerts.jsonl rows sent through the sinks as they happen.

`python -m core monitor ... --sinks slack,console` passes `Relay.tick` to the monitor's loop
(core.lab.monitor never imports publishing). Each tick reads the rows each sink has not been sent
yet and sends them as one message (`core.publish.alerts.live_outcome`), so:

  deduplicated  a (run, rule) already sent within dedup_s is not sent again; it is counted and
                the next message about that rule says "+N more"
  rate limited  at most one message per sink every min_interval_s; rows arriving meanwhile wait
                and go together in the next one
  restart-safe  what each sink was sent (its read offset in each alerts.jsonl, and when each
                (run, rule) was last sent) lives in a JSON state file, written after every send
  failing alone a sink that fails logs one line and keeps its rows for its next turn; the other
                sinks are sent to as usual
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from core.base.store import atomic_write_json, read_json, read_jsonl
from core.publish.alerts import live_outcome, send_all

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, sinks, state_path: str | Path, min_interval_s: float = 30.0, dedup_s: float = 3600.0,
                 clock=time.time):
        self.sinks = list(sinks)
        self.state_path = Path(state_path)
        self.min_interval_s = min_interval_s
        self.dedup_s = dedup_s
        self.clock = clock
        state = read_json(self.state_path) if self.state_path.exists() else {}
        self.state: dict = state.get("sinks", {})
        self.sent = 0  # messages sent by this process, all sinks together

    def _sink_state(self, name: str) -> dict:
        return self.state.setdefault(name, {"offsets": {}, "last_sent": 0.0, "reported": {}, "held": {}})

    def tick(self, alert_files, force: bool = False) -> int:
        """Send what is due (force: ignore the rate limit, as when the monitor stops); returns the
        number of messages sent in this tick."""
        now, sent = self.clock(), 0
        rows_by_file = {str(Path(f)): read_jsonl(Path(f)) for f in alert_files if Path(f).exists()}
        for sink in self.sinks:
            st = self._sink_state(sink.name)
            if not force and now - st["last_sent"] < self.min_interval_s:
                continue
            # a file shorter than what was read (a run directory made anew) is read from its start
            fresh = [r for path, rows in rows_by_file.items()
                     for r in rows[st["offsets"].get(path, 0) if st["offsets"].get(path, 0) <= len(rows) else 0:]]
            if not fresh:
                continue
            due, held = [], dict(st["held"])
            for row in fresh:
                key = f"{row.get('run')}/{row.get('rule')}"
                if now - st["reported"].get(key, -1e18) < self.dedup_s:
                    held[key] = held.get(key, 0) + 1
                    continue
                if any(f"{r.get('run')}/{r.get('rule')}" == key for r in due):
                    held[key] = held.get(key, 0) + 1
                    continue
                due.append(dict(row, repeats=held.pop(key, 0)))
            if due:
                failed = send_all([sink], live_outcome(due))
                if failed:
                    continue  # kept for this sink's next turn
                st["last_sent"] = now
                for row in due:
                    st["reported"][f"{row.get('run')}/{row.get('rule')}"] = now
                sent += 1
                log.info("sent %d live alert(s) to %s", len(due), sink.name)
            st["held"] = held
            st["offsets"].update({path: len(rows) for path, rows in rows_by_file.items()})
            atomic_write_json(self.state_path, {"sinks": self.state})
        self.sent += sent
        return sent
