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
 && /opt/newsloom/bin/python -c "import trafilatura, service.cli; print('trafilatura', trafilatura.__version__)"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home newsloom \
 && mkdir -p /data && chown newsloom:newsloom /data
COPY --from=build /opt/newsloom /opt/newsloom
ENV PATH=/opt/newsloom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NEWSLOOM_HOST=0.0.0.0 \
    NEWSLOOM_PORT=8000 \
    NEWSLOOM_DATABASE_URL=sqlite+aiosqlite:////data/newsloom.db
USER newsloom
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# `newsloom serve` applies pending migrations before it starts serving.
CMD ["newsloom", "serve"]
