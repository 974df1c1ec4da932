#!/usr/bin/env bash
# Container entrypoint: the reliability monitor watches every running job of the run store
# (a side-car process; MONITOR_SINKS, e.g. slack,console, sends its alerts as they happen) and
# the Prometheus exporter serves on PROM_PORT (9108) while the Streamlit app serves in the
# foreground. When one exits, the others are stopped and the container exits with that status, so
# the orchestrator restarts it.
set -euo pipefail
cd "$(dirname "$0")/../.."
store="${HRM_GATE_STORE:-cache/runs}"
mkdir -p "$store"

python -m core monitor --store "$store" --interval "${MONITOR_INTERVAL:-10}" \
  ${MONITOR_SINKS:+--sinks "$MONITOR_SINKS"} &
monitor=$!
python -m core prom-exporter --store "$store" --host "${HOST:-0.0.0.0}" --port "${PROM_PORT:-9108}" &
exporter=$!
python -m streamlit run app.py --server.address "${HOST:-0.0.0.0}" --server.port "${PORT:-8501}" \
  --server.headless true --browser.gatherUsageStats false &
app=$!

stop() { kill -TERM "$monitor" "$exporter" "$app" 2>/dev/null || true; }
trap 'stop; wait; exit 143' TERM INT
status=0
wait -n "$monitor" "$exporter" "$app" || status=$?
stop
wait || true
exit "$status"
