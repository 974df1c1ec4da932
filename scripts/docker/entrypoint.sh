#!/usr/bin/env bash
# Container entrypoint. Started as root, it starts the sandbox broker (root: it gives every
# sandbox worker its own uid, namespaces and read-only mounts) and then runs, as the unprivileged
# $HRM_GATE_APP_USER, the reliability monitor over every running job of the run store (a side-car;
# MONITOR_SINKS, e.g. slack,console, sends its alerts as they happen), the Prometheus exporter on
# PROM_PORT (9108) and the Streamlit app; their jobs reach the sandbox through the broker's socket.
# When one of them exits, the others are stopped and the container exits with that status, so the
# orchestrator restarts it.
# Started as another user (or with HRM_GATE_APP_USER empty) it runs everything as that user,
# without a broker: hosted, the sandbox then refuses to run samples with limits only.
set -euo pipefail
cd "$(dirname "$0")/../.."
store="${HRM_GATE_STORE:-cache/runs}"
app_user="${HRM_GATE_APP_USER:-}"
as_app=()
pids=()
if [ "$(id -u)" = 0 ] && [ -n "$app_user" ]; then
  socket="${HRM_GATE_SANDBOX_SOCKET:-/run/hrm-gate/sandbox.sock}"
  mkdir -p "$(dirname "$socket")"
  chmod 0755 "$(dirname "$socket")"
  python -m core sandbox-broker --socket "$socket" --group "$(id -g "$app_user")" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
  export HRM_GATE_SANDBOX_SOCKET="$socket"
  mkdir -p "$store"
  chown "$app_user" "$store"
  as_app=(setpriv "--reuid=$(id -u "$app_user")" "--regid=$(id -g "$app_user")" --init-groups --)
else
  unset HRM_GATE_SANDBOX_SOCKET
  mkdir -p "$store"
fi

"${as_app[@]}" python -m core monitor --store "$store" --interval "${MONITOR_INTERVAL:-10}" \
  ${MONITOR_SINKS:+--sinks "$MONITOR_SINKS"} &
pids+=($!)
"${as_app[@]}" python -m core prom-exporter --store "$store" --host "${HOST:-0.0.0.0}" --port "${PROM_PORT:-9108}" &
pids+=($!)
"${as_app[@]}" python -m streamlit run app.py --server.address "${HOST:-0.0.0.0}" --server.port "${PORT:-8501}" \
  --server.headless true --browser.gatherUsageStats false &
pids+=($!)

stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; }
trap 'stop; wait; exit 143' TERM INT
status=0
wait -n "${pids[@]}" || status=$?
stop
wait || true
exit "$status"
