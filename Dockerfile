# syntax=docker/dockerfile:1
# Sentinel's image. CPU-only torch by default: it leaves out the ~4 GB of CUDA wheels (nvidia-*,
# triton, cuda-*) that PyPI's Linux torch brings; for a GPU image see TORCH_INDEX below.
# Build: `docker build -t sentinel .` (docs/deployment.md). CI lints this file (.ci/check-docker)
# but has no Docker daemon: the image itself is not built there.

# Build stage: resolve and install dependencies from the lock into /app/.venv.
FROM python:3.11-slim AS build

# Where torch comes from; every other package comes from uv.lock, hash-checked.
# - the default: PyTorch's CPU-only wheel index, the lock's torch version (no CUDA wheels);
# - `pypi`: the lock's own torch from PyPI, which on Linux is the CUDA build with its nvidia-*
#   wheels (the GPU image: `docker build --build-arg TORCH_INDEX=pypi -t sentinel:cuda .`);
# - any other index URL, e.g. another of PyTorch's CUDA indexes (https://download.pytorch.org/whl/
#   cu128 and the like, for an older driver) that has the lock's torch version: that version from
#   there, with whatever that build needs.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# What only torch's CUDA build needs, left out unless TORCH_INDEX=pypi. scripts/check_dockerfile.py
# (CI: .ci/check-docker) fails when this list and uv.lock disagree.
ARG TORCH_CUDA_ONLY="cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cccl \
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft \
nvidia-cufile nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 \
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx triton"

# -e: a failing step of a multi-command RUN fails the build (bash alone would go on and let the
# status of the last command decide); pipefail: so does a failing command left of a pipe.
SHELL ["/bin/bash", "-e", "-o", "pipefail", "-c"]
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# Every locked dependency except torch (and its CUDA wheels), then torch from TORCH_INDEX at the
# version the lock names.
RUN set --; \
    if [ "$TORCH_INDEX" != pypi ]; then \
      for name in torch $TORCH_CUDA_ONLY; do set -- "$@" --no-install-package "$name"; done; \
    fi; \
    uv sync --locked --no-dev --no-group train --no-install-project "$@"; \
    if [ "$TORCH_INDEX" != pypi ]; then \
      version="$(python -c 'import tomllib; print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "torch"))')"; \
      uv pip install --python .venv/bin/python --default-index "$TORCH_INDEX" "torch==$version"; \
    fi; \
    .venv/bin/python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"; \
    if [ "$TORCH_INDEX" = https://download.pytorch.org/whl/cpu ] \
        && uv pip list --python .venv/bin/python | grep -E '^(nvidia-|cuda-|triton )'; then \
      echo "CUDA wheels in the CPU image" >&2; exit 1; \
    fi
COPY app ./app
COPY migration ./migration
COPY alembic.ini ./
# The project itself; --inexact keeps the torch installed above (an exact sync would remove it).
RUN set --; \
    if [ "$TORCH_INDEX" != pypi ]; then \
      for name in torch $TORCH_CUDA_ONLY; do set -- "$@" --no-install-package "$name"; done; \
    fi; \
    uv sync --locked --no-dev --no-group train --inexact "$@"

# Runtime stage: the venv, the code and the shipped model; runs as a non-root user.
FROM python:3.11-slim AS runtime
# A fixed numeric id, so `runAsNonRoot` checks and host volume permissions can rely on it.
RUN groupadd --system --gid 10001 sentinel \
    && useradd --system --uid 10001 --gid sentinel --home /app sentinel
WORKDIR /app
COPY --from=build --chown=10001:10001 /app /app
COPY --chown=10001:10001 data/models ./data/models
# data/chroma exists so the `chroma` service's volume there starts owned by sentinel (Docker gives
# a new volume the owner of the image directory it is mounted on; one that is missing is root's).
RUN mkdir -p data/chroma logs && chown -R 10001:10001 data logs
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"]
CMD ["sentinel", "serve", "--host", "0.0.0.0", "--port", "8000"]
