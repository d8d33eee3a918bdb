# The Python interpreter that .venv is made from, chosen in one place for
# `make run`, `make test` and `make bench` (sourced by their scripts), and the
# development pins' install into it.
#
# KOBATELA_PYTHON wins when set. Otherwise the distribution's CPython 3.11
# (/usr/bin/python3.11): Debian builds it with profile-guided and link-time
# optimisation, as the python:3.11 image production runs is built (Dockerfile).
# Then python3.11 or python3 on PATH: a pyenv build made with default options
# has neither optimisation, and costs this app about a tenth more CPU per
# request (bench/README.md, "Fifth pass").

kob_python() {
  if [ -n "${KOBATELA_PYTHON:-}" ]; then
    echo "$KOBATELA_PYTHON"
  elif [ -x /usr/bin/python3.11 ]; then
    echo /usr/bin/python3.11
  else
    command -v python3.11 || command -v python3
  fi
}

# The interpreter an existing .venv was made from (empty when there is none);
# bench/run.sh records it with the figures.
kob_venv_base() {
  sed -n 's/^executable = //p' .venv/pyvenv.cfg 2>/dev/null || true
}

# True when .venv works (python and pip) and was made from kob_python.
kob_venv_current() {
  local py base
  py=$(kob_python) || return 1
  base=$(kob_venv_base)
  [ -n "$base" ] && [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1 &&
    [ "$(realpath "$base" 2>/dev/null)" = "$(realpath "$(command -v "$py")" 2>/dev/null)" ]
}

# Makes .venv from kob_python unless it is current. A half-made venv, or one
# made from another interpreter, is rebuilt from scratch: its requirement
# stamps go with it, so the caller's install step fills the new one.
kob_venv() {
  kob_venv_current && return 0
  local py
  py=$(kob_python) || { echo "python: Python 3.11 is required (Debian 12: apt-get install python3 python3-venv)" >&2; return 1; }
  if [ -e .venv ]; then
    local base
    base=$(kob_venv_base)
    echo "python: making .venv again from $py (the one there is incomplete or made from ${base:-another interpreter})" >&2
  fi
  rm -rf .venv
  "$py" -m venv .venv
}

# The stamp of the development pins (runtime and dev): what .venv/.requirements.sha256
# holds once requirements-dev.txt is installed.
kob_dev_requirements_hash() {
  cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1
}

# kob_venv, then requirements-dev.txt (which includes the runtime pins),
# installed again only when the pins changed, so repeated runs are fast.
kob_venv_dev() {
  kob_venv
  local hash
  hash=$(kob_dev_requirements_hash)
  if [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$hash" ]; then
    .venv/bin/python -m pip install -r requirements-dev.txt
    echo "$hash" >.venv/.requirements.sha256   # only after a successful install
  fi
}
