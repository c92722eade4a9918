# Smotra server image: `manage.py serve` (migrate, then gunicorn) as a non-root user on port 8080.
#
#   docker build -t smotra .
#   docker run -p 8080:8080 -v smotra-data:/app/data smotra                      # SQLite, development
#   docker run -p 8080:8080 -e SMOTRA_ENVIRONMENT=production -e SMOTRA_JWT_SECRET=... \
#       -e DATABASE_URL=postgres://smotra:...@db:5432/smotra smotra                 # PostgreSQL
#   docker run -p 8080:8080 -v ./config.yaml:/etc/smotra/config.yaml:ro \
#       -e SMOTRA_CONFIG=/etc/smotra/config.yaml -e SMOTRA_JWT_SECRET=... smotra     # mounted file
#
# Give it time to drain on stop: `docker stop -t 35` (server.shutdown_timeout is 30s by default).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SMOTRA_STATIC_ROOT=/app/staticfiles

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Collected once at build time; whitenoise serves them from gunicorn (no separate web server).
RUN python manage.py collectstatic --noinput --verbosity 0

# SQLite's default file is ./data/smotra.db, i.e. /app/data: the one directory the server keeps data in.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin smotra \
    && mkdir -p /app/data \
    && chown smotra:smotra /app/data
USER smotra

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz/live' % os.environ.get('SMOTRA_PORT', '8080'), timeout=4)"]

CMD ["python", "manage.py", "serve"]
