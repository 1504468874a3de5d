# Tearline server image. The app reads alembic/, alembic.ini, policies/ and
# stix_mappings/ from the directory above its package, so the tree is kept in
# /opt/tearline and installed in editable mode rather than into site-packages.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TEARLINE_DATA_DIR=/data \
    TEARLINE_DATABASE_URL=sqlite:////data/tearline.sqlite \
    TEARLINE_HOST=0.0.0.0 \
    TEARLINE_PORT=8000

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home tearline \
    && mkdir -p /data /opt/tearline/app \
    && chown tearline:tearline /data

WORKDIR /opt/tearline

# Dependencies first, against a placeholder package, so code changes reuse this layer;
# the editable install points at /opt/tearline/app, which the next COPY fills in.
COPY pyproject.toml README.md ./
RUN touch app/__init__.py && pip install -e .

COPY alembic.ini ./
COPY alembic ./alembic
COPY policies ./policies
COPY stix_mappings ./stix_mappings
COPY app ./app

USER tearline
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TEARLINE_PORT', '8000')}/healthz\", timeout=4)"]

# Extra arguments go to `tearline serve` (e.g. --ssl-keyfile/--ssl-certfile).
# Other commands: docker run --entrypoint tearline IMAGE keys generate
ENTRYPOINT ["/bin/sh", "-c", "tearline db upgrade && exec tearline serve --host 0.0.0.0 \"$@\"", "tearline"]
