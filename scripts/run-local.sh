#!/usr/bin/env bash
# Install the site into .venv, prepare a SQLite database under var/, print the login, and run the web server
# (http://127.0.0.1:8000, or LOCAL_ADDRESS=host:port) with the gpu and maintenance queue clusters.
# Ctrl-C, or SIGTERM to this script or to its process group, stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
install_into_venv

mkdir -p var
export DATABASE_URL="${DATABASE_URL:-sqlite:///var/db.sqlite3}"
export LOG_FORMAT="${LOG_FORMAT:-plain}"
if [ -z "${SECRET_KEY:-}" ]; then
  if [ ! -s var/secret_key ]; then
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key)
  fi
  SECRET_KEY="$(cat var/secret_key)"
  export SECRET_KEY
fi

python manage.py migrate --noinput
# Tasks left running when this machine last stopped become interrupted (retryable) before a worker starts.
python manage.py reconcile_tasks
python manage.py createcachetable
python manage.py collectstatic --noinput --verbosity 0
# Message catalogues are compiled here, not kept in git; msgfmt comes with Debian's gettext package.
if command -v msgfmt >/dev/null 2>&1; then
  python manage.py compilemessages --ignore '.venv' --ignore 'var' --verbosity 0
else
  echo "WARNING: msgfmt is missing (apt-get install gettext), so the pages are shown in English only." >&2
fi
LOCAL_ADDRESS="${LOCAL_ADDRESS:-127.0.0.1:8000}"
python manage.py ensure_local_user --credentials-file var/local-login.txt --address "$LOCAL_ADDRESS"

cluster_pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "Stopping the web server and the queue clusters..."
  # A django-q2 cluster stops cleanly on SIGINT to its main process. SIGTERM sent to every process of a
  # cluster at once can leave the main process waiting forever, so each cluster runs in its own session and
  # only its main process is signalled here. Bash starts a script's background jobs with SIGINT ignored, so
  # the web server gets SIGTERM instead.
  for pid in "${cluster_pids[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  [ -n "${web_pid:-}" ] && kill -TERM "$web_pid" 2>/dev/null || true
  wait
}
trap stop_all INT TERM EXIT

Q_CLUSTER_NAME=gpu setsid python manage.py qcluster &
cluster_pids+=($!)
Q_CLUSTER_NAME=maintenance setsid python manage.py qcluster &
cluster_pids+=($!)
python manage.py runserver "$LOCAL_ADDRESS" --noreload &
web_pid=$!

echo "FlashVSR is running at http://$LOCAL_ADDRESS (Ctrl-C to stop)."
# Stop everything as soon as any of the three exits, so a crashed worker is not left unnoticed.
wait -n
