#!/usr/bin/env bash
# Installs what heloflow needs when it is missing; sourced by scripts/demo and scripts/test.
# Each step checks first, so a machine that has everything installs nothing.
set -euo pipefail

HELOFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HELOFLOW_ROOT

say() { printf '[setup] %s\n' "$*" >&2; }

# ensure_apt PACKAGE...: installs Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing system packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_rust: cargo must be on PATH (the one prerequisite heloflow does not install).
ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    say "cargo not found: install the Rust toolchain (https://rustup.rs) and run this again"
    exit 1
  }
}

# ensure_python_env FILE: a virtual environment in .venv with the requirements FILE installed
# (requirements-runtime.txt for running pipelines, requirements-dev.txt for everything tests need).
ensure_python_env() {
  local venv="$HELOFLOW_ROOT/.venv"
  local requirements="$HELOFLOW_ROOT/$1"
  [ -f "$requirements" ] || { say "missing $1"; exit 1; }
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
      ensure_apt python3-venv
      python3 -m venv "$venv"
    }
  fi
  local stamp="$venv/.$(basename "$requirements").sha256"
  local wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "installing Python packages from $1"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
  fi
  export PATH="$venv/bin:$PATH"
}

# ensure_node [DIR...]: node and npm on PATH (Debian's nodejs and npm when missing), then
# `npm ci` in each DIR (default: src/server/dashboard, the uPlot that build.rs embeds in the
# binary) whose node_modules is missing or was installed from another package-lock.json.
ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    ensure_apt nodejs npm
  fi
  local dirs=("$@")
  [ ${#dirs[@]} -eq 0 ] && dirs=(src/server/dashboard)
  local dir path stamp wanted
  for dir in "${dirs[@]}"; do
    path="$HELOFLOW_ROOT/$dir"
    [ -f "$path/package-lock.json" ] || { say "missing $dir/package-lock.json"; exit 1; }
    stamp="$path/node_modules/.package-lock.sha256"
    wanted="$(sha256sum "$path/package-lock.json" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
      say "installing npm packages in $dir"
      npm ci --prefix "$path" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
      echo "$wanted" >"$stamp"
    fi
  done
}
