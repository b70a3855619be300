# syntax=docker/dockerfile:1
#
# navigator image: the server in a self-contained virtualenv at /opt/navigator, plus the
# bundled demo (config.example.yml, examples/todo, public/) under /app.
#
#   docker build -t navigator .
#   docker run --rm -p 3000:3000 navigator                      # the demo
#   docker run --rm -p 3000:3000 -v $PWD/config:/app/config navigator   # your config
#
# Other images take navigator in with one line (same base image, so the venv's
# interpreter path matches; see docs/deploy-fly.md):
#   COPY --from=navigator /opt/navigator /opt/navigator

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: install navigator and its dependencies into a venv ---------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the mypyc-compiled request path (setup.py); only this stage has it.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/navigator
WORKDIR /src
# Everything the package build reads, and nothing else, so edits to docs or tests do not
# invalidate this layer. uvloop, httptools, msgspec, psutil and bcrypt ship manylinux
# wheels for amd64 and arm64. The build must come out compiled (`--version` says which).
COPY pyproject.toml setup.py README.md ./
COPY navigator ./navigator
RUN /opt/navigator/bin/pip install . \
 && /opt/navigator/bin/navigator --version \
 && /opt/navigator/bin/python -c "import navigator.build as b; assert b.build_kind() == 'compiled'"

# --- final: the venv plus the demo ----------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/navigator/bin:$PATH
COPY --from=builder /opt/navigator /opt/navigator

WORKDIR /app
COPY config.example.yml /app/config/navigator.yml
COPY public /app/public
COPY examples /app/examples

EXPOSE 3000
# navigator treats SIGTERM as a graceful shutdown: stop accepting, finish in-flight
# requests (30 s budget), run stop hooks, SIGTERM each tenant's process group, SIGKILL
# what is left. It also reaps orphaned grandchildren, so it can run as PID 1 without
# --init.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/navigator/bin/navigator"]
CMD ["--config", "/app/config/navigator.yml"]
