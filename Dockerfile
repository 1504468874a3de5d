# Tearline server image: two stages.
#
# builder  builds a wheel of every dependency and installs them into /opt/venv, with the
#          project itself installed in editable mode pointing at /opt/tearline: the app reads
#          alembic/, alembic.ini, policies/ and stix_mappings/ from the directory above its
#          package, so the tree lives in /opt/tearline rather than in site-packages.
# runtime  python slim with /opt/venv and the source tree only (no compiler, no wheels, no
#          tests), running as an unprivileged user. docker/entrypoint.sh migrates the
#          database, then serves; docs/operators/deployment.md has the details.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/tearline
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "setuptools>=68,<81" "wheel>=0.43,<1"
# Dependencies first, against a placeholder package, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir app \
    && touch app/__init__.py \
    && /opt/venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels --no-build-isolation -e . \
    && rm -rf /wheels app

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    TEARLINE_DATA_DIR=/data \
    TEARLINE_HOST=0.0.0.0 \
    TEARLINE_PORT=8000 \
    TEARLINE_LOG_FORMAT=json

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin tearline \
    && mkdir -p /data \
    && chown tearline:tearline /data

COPY --from=builder /opt/venv /opt/venv
WORKDIR /opt/tearline
# Owned by root and read-only to the server's user: the code cannot be changed by the process running it.
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY policies ./policies
COPY stix_mappings ./stix_mappings
COPY app ./app
COPY docker/entrypoint.sh /usr/local/bin/tearline-entrypoint

USER 10001:10001
# From here the default TEARLINE_DATABASE_URL (sqlite:///./data/tearline.sqlite) is the
# volume's /data/tearline.sqlite; production sets the URL, and refuses to start without it.
WORKDIR /
VOLUME ["/data"]
EXPOSE 8000

# Liveness only: /readyz (database, schema, policy) is for the proxy or orchestrator to route on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TEARLINE_PORT', '8000')}/healthz\", timeout=4)"]

# No arguments: `tearline db upgrade` then `tearline serve`; options alone go to `serve`;
# anything else is a tearline command (`serve` alone does not migrate).
ENTRYPOINT ["/usr/local/bin/tearline-entrypoint"]
CMD []
