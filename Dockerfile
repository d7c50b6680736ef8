# Newsloom: one image for API and pollers. SQLite in /data by default; set NEWSLOOM_DATABASE_URL
# to postgresql+asyncpg://… to share a PostgreSQL database between replicas.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/newsloom
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
RUN /opt/newsloom/bin/pip install . \
 && /opt/newsloom/bin/python -c "import trafilatura, service.cli; print('trafilatura', trafilatura.__version__)" \
 # Bytecode is compiled here, so a read-only root file system never needs a write at import time.
 && /opt/newsloom/bin/python -m compileall -q -j 0 /opt/newsloom/lib

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home newsloom \
 && mkdir -p /data && chown newsloom:newsloom /data
COPY --from=build /opt/newsloom /opt/newsloom
# Read-only root file system friendly: only /data is written (database, temporary files of the worker
# processes in /data/tmp); no bytecode is written at run time.
ENV PATH=/opt/newsloom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/data/tmp \
    NEWSLOOM_HOST=0.0.0.0 \
    NEWSLOOM_PORT=8000 \
    NEWSLOOM_DATABASE_URL=sqlite+aiosqlite:////data/newsloom.db
USER newsloom
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# Ready = database reachable, schema at this code's migration head, pollers running (GET /readyz, no key needed).
# Orchestrators with separate probes: /healthz for liveness, /readyz for readiness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
# `newsloom migrate` creates the database on a new volume (no other command does) and applies pending
# migrations; `newsloom serve` would apply them too, but refuses a SQLite file that does not exist. API keys are required
# (NEWSLOOM_AUTH=on): create one with `docker exec CONTAINER newsloom keys create --scope admin`.
# SIGTERM (docker stop) releases in-flight work within NEWSLOOM_SHUTDOWN_GRACE (8 s, under Docker's 10 s).
CMD ["sh", "-c", "mkdir -p \"$TMPDIR\" && newsloom migrate && exec newsloom serve"]
