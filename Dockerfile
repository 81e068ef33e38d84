# syntax=docker/dockerfile:1
# Build stage: resolve and install dependencies from the lock into /app/.venv.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-group train --no-install-project
COPY app ./app
COPY migration ./migration
COPY alembic.ini ./
RUN uv sync --locked --no-dev --no-group train

# Runtime stage: the venv, the code and the shipped model; runs as a non-root user.
FROM python:3.11-slim AS runtime
RUN groupadd --system sentinel && useradd --system --gid sentinel --home /app sentinel
WORKDIR /app
COPY --from=build --chown=sentinel:sentinel /app /app
COPY --chown=sentinel:sentinel data/models ./data/models
RUN mkdir -p data logs && chown -R sentinel:sentinel data logs
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
USER sentinel
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"
CMD ["sentinel", "serve", "--host", "0.0.0.0", "--port", "8000"]
