#!/bin/sh
# Container entrypoint: bring the database up to date, make sure signing keys exist, then run
# the command (by default gunicorn, see CMD in the Dockerfile) as PID 1 so it receives signals.
#
# SKIP_MIGRATIONS=true skips both steps. Use it for containers that must not touch the schema:
# the background worker, extra web replicas started after a one-off migration, or a deployment
# that runs `flask --app wsgi db upgrade` as a separate release step.
set -eu

case "$(printf '%s' "${SKIP_MIGRATIONS:-false}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes|on)
        echo "entrypoint: SKIP_MIGRATIONS is set, not running migrations or key checks"
        ;;
    0|false|no|off|"")
        echo "entrypoint: applying database migrations"
        flask --app wsgi db upgrade
        echo "entrypoint: checking signing keys"
        flask --app wsgi keys ensure
        ;;
    *)
        echo "entrypoint: SKIP_MIGRATIONS must be true or false, not '${SKIP_MIGRATIONS}'" >&2
        exit 64
        ;;
esac

if [ "$#" -eq 0 ]; then
    set -- gunicorn -c gunicorn.conf.py wsgi:app
fi
exec "$@"
