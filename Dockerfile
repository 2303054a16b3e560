# syntax=docker/dockerfile:1
# The identity provider: gunicorn serving wsgi:app on port 3001.
#
#   docker build -t idp .
#   docker run --env-file .env -e DATABASE_URL=... -e REDIS_URL=... -p 3001:3001 idp
#
# The entrypoint applies migrations and makes sure signing keys exist before the command runs;
# set SKIP_MIGRATIONS=true to skip that (the worker container does). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi \
    IDP_ENV=production \
    HOST=0.0.0.0 \
    PORT=3001

WORKDIR /app

# Every runtime dependency ships a manylinux wheel (psycopg2-binary, argon2-cffi, cryptography),
# so no compiler is needed. Installed first so code changes do not invalidate this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Only what the app needs at run time; tests, benchmarks and docs stay out (see .dockerignore).
COPY idp ./idp
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY translations ./translations
COPY wsgi.py gunicorn.conf.py ./
COPY --chmod=0755 docker/entrypoint.sh ./docker/entrypoint.sh
RUN python -m compileall -q idp migrations wsgi.py gunicorn.conf.py

# The code stays owned by root and read-only to the service user. The user gets a home of its
# own (gunicorn keeps its control socket in ~/.gunicorn) and instance/, which the app only
# writes to in development (SQLite and generated secrets when no DATABASE_URL/SECRET_KEY is set).
RUN groupadd --system idp \
    && useradd --system --gid idp --create-home --home-dir /home/idp --shell /usr/sbin/nologin idp \
    && mkdir -p /app/instance \
    && chown idp:idp /app/instance
USER idp

EXPOSE 3001

# Liveness only (no database round trip); the port and API prefix follow PORT and API_BASE_PATH.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('PORT') or '3001'; base = ('/' + (os.environ.get('API_BASE_PATH') or '/api').strip('/')).rstrip('/'); urllib.request.urlopen(f'http://127.0.0.1:{port}{base}/health/live', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
