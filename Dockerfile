# HRM-CodeGen Gate: the Streamlit app with the reliability monitor and the Prometheus exporter
# (port 9108, rules in deploy/prometheus/rules.yml) as side-car processes.
#   docker build -t hrm-gate .                              CPU image (torch's CPU wheels)
#   docker build --build-arg VARIANT=gpu -t hrm-gate:gpu .  GPU image (torch's CUDA wheels; run with --gpus all)
#   docker run -p 8501:8501 -e HRM_GATE_ACCESS_TOKEN=... -v gate-data:/data hrm-gate
# Runs, downloaded datasets and offline W&B runs live in the /data volume.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG VARIANT=cpu
ARG TORCH_INDEX_CPU=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_GPU=https://download.pytorch.org/whl/cu128

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HRM_GATE_HOSTED=1 \
    HRM_GATE_STORE=/data/runs \
    HRM_GATE_DATASETS=/data/datasets \
    WANDB_MODE=offline \
    WANDB_DIR=/data \
    PORT=8501

# An unprivileged user: the app, its jobs and the sandboxed samples never run as root.
RUN groupadd --system --gid 10001 gate \
 && useradd --system --uid 10001 --gid gate --home-dir /app --shell /usr/sbin/nologin gate \
 && mkdir -p /app /data \
 && chown gate:gate /data

WORKDIR /app
COPY requirements.txt ./
RUN if [ "$VARIANT" = "gpu" ]; then index="$TORCH_INDEX_GPU"; else index="$TORCH_INDEX_CPU"; fi \
 && pip install --no-cache-dir --extra-index-url "$index" -r requirements.txt

COPY --chown=root:root . .
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8501 9108

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8501')}/_stcore/health\", timeout=4)"]

ENTRYPOINT ["scripts/docker/entrypoint.sh"]
