# HRM-CodeGen Gate: the Streamlit app with the reliability monitor and the Prometheus exporter
# (port 9108, rules in deploy/prometheus/rules.yml) as side-car processes.
#   docker build -t hrm-gate .                              CPU image (torch's CPU wheels)
#   docker build --build-arg VARIANT=gpu -t hrm-gate:gpu .  GPU image (torch's CUDA wheels; run with --gpus all)
#   docker run --cap-add SYS_ADMIN -p 8501:8501 -p 9108:9108 -e HRM_GATE_ACCESS_TOKEN=... -v gate-data:/data hrm-gate
# SYS_ADMIN is for the sandbox broker alone (root, it makes each worker's namespaces and mounts);
# the app, the monitor and samples run without any capability. Without it the hosted app refuses
# to run samples, in one line, rather than run them with limits only.
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
    HRM_GATE_APP_USER=gate \
    HRM_GATE_SANDBOX_SOCKET=/run/hrm-gate/sandbox.sock \
    HRM_GATE_STORE=/data/runs \
    HRM_GATE_DATASETS=/data/datasets \
    WANDB_MODE=offline \
    WANDB_DIR=/data \
    PORT=8501

# An unprivileged user for the app, the monitor and their jobs. The container starts as root only
# for the sandbox broker (scripts/docker/entrypoint.sh), which gives every sandbox worker its own
# uid, namespaces and read-only mounts; samples never run as root or as the app's user.
RUN groupadd --system --gid 10001 gate \
 && useradd --system --uid 10001 --gid gate --home-dir /app --shell /usr/sbin/nologin gate \
 && mkdir -p /app /data \
 && chown gate:gate /data

WORKDIR /app
COPY requirements.txt ./
RUN if [ "$VARIANT" = "gpu" ]; then index="$TORCH_INDEX_GPU"; else index="$TORCH_INDEX_CPU"; fi \
 && pip install --no-cache-dir --extra-index-url "$index" -r requirements.txt

COPY --chown=root:root . .
VOLUME ["/data"]
EXPOSE 8501 9108

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8501')}/_stcore/health\", timeout=4)"]

ENTRYPOINT ["scripts/docker/entrypoint.sh"]
