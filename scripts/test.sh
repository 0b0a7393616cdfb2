#!/usr/bin/env bash
# Install the site with its test dependencies into .venv and run the whole test suite.
# Database: DATABASE_URL when set, else PostgreSQL at 127.0.0.1:5432 when it is reachable, else SQLite (with a
# warning, because the race test then skips). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
install_into_venv '[dev]'

if [ -z "${DATABASE_URL:-}" ]; then
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/flashvsr"
  else
    echo "WARNING: no DATABASE_URL and no PostgreSQL at 127.0.0.1:5432; running the tests on SQLite." >&2
  fi
fi
echo "Test database: ${DATABASE_URL:-SQLite (in memory)}"

if [ -d locale ] && command -v msgfmt >/dev/null 2>&1; then
  DJANGO_SETTINGS_MODULE=flashvsr_site.settings_test python manage.py compilemessages --ignore '.venv' --ignore 'var' --verbosity 0
fi

python -m pytest "$@"
