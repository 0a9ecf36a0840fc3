# syntax=docker/dockerfile:1

# --- builder: resolve nothing, install exactly what uv.lock pins -----------------------------
FROM python:3.11-slim AS builder

# Same uv as CI (.ci/run), so the lock is read the same way everywhere.
RUN pip install --no-cache-dir "uv==0.13.9"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-editable --no-install-project

# Then the project itself, installed as a regular (non-editable) package into the venv.
COPY README.md ./
COPY src ./src
RUN uv sync --locked --no-dev --no-editable

# --- runtime: the venv only; no uv, no compilers, no sources ---------------------------------
FROM python:3.11-slim

RUN groupadd --system --gid 10001 aura \
    && useradd --system --uid 10001 --gid aura --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin aura

# Root-owned and read-only for the service user: the process cannot modify its own code.
COPY --from=builder /app/.venv /app/.venv

ENV HOST=0.0.0.0 \
    PORT=8000 \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app
# Numeric, so orchestrators can verify `runAsNonRoot` without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000

# Liveness through the service's own /health (python, because slim images have no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"

# The README's `uv run aura-agent serve`, without uv: the same console script.
CMD ["aura-agent", "serve"]
