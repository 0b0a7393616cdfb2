# Sourced by run-local.sh and test.sh: create .venv when missing, activate it, and install the site with the
# extras in $1 (for example "[dev]"). torch is installed first with this exact spelling, because a wider
# requirement can pull a multi-gigabyte CUDA build. FLASHVSR_SKIP_INSTALL=1 skips both pip steps.
install_into_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-python3.11}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  if [ "${FLASHVSR_SKIP_INSTALL:-0}" != "1" ]; then
    pip install torch==2.13.0
    pip install -e ".${extras}"
  fi
}
