#!/usr/bin/env bash
# Create the common workload's peer virtual environments:
#   target/bench-venvs/<peer>  (relative to the repository root), one per peer,
#   from benches/common_workload/requirements-<peer>.txt (exact pins).
#
# Usage: setup.sh [peer...]   (default: numpy ezmsg timeflux)
# Env:   PYTHON  interpreter to build the venvs from (default python3; the pins are for 3.11)
#        CW_VENVS  where the venvs go (default <repo>/target/bench-venvs)
#
# Idempotent: a venv whose marker file (.common-workload-requirements) equals the peer's
# requirement list plus the interpreter version is left alone; any other is rebuilt from scratch.
# Works with a python3 whose venv module cannot bootstrap pip (Debian without python3-venv's
# ensurepip): the venv is then made --without-pip and pip is installed into it by the system pip
# (`pip --python`, pip >= 22.3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venvs="${CW_VENVS:-$root/target/bench-venvs}"
peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(numpy ezmsg timeflux)

log() { echo "setup.sh: $*" >&2; }

pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || {
    log "cannot run $python"; exit 1; }
case "$pyver" in
    3.11.*) ;;
    *) log "warning: $python is Python $pyver; the pins were made for 3.11" ;;
esac

make_venv() {
    local dir="$1"
    if [ -n "${CW_VENV_WITHOUT_PIP:-}" ] || ! "$python" -m venv "$dir" 2>/dev/null; then
        # No ensurepip (e.g. Debian's python3 without python3-venv): bootstrap with the system pip.
        rm -rf "$dir"
        "$python" -m venv --without-pip "$dir" || {
            log "$python -m venv failed (on Debian: apt-get install python3-venv)"; return 1; }
        "$python" -m pip --python "$dir/bin/python" install --disable-pip-version-check -q pip || {
            log "could not bootstrap pip into $dir (needs python3-venv, or pip >= 22.3 for --python)"
            return 1; }
    fi
}

mkdir -p "$venvs"
seen=" "
for peer in "${peers[@]}"; do
    case "$seen" in *" $peer "*) continue ;; esac
    seen="$seen$peer "
    req="$here/requirements-$peer.txt"
    [ -f "$req" ] || { log "unknown peer '$peer' (no $req)"; exit 1; }
    dir="$venvs/$peer"
    marker="$dir/.common-workload-requirements"
    want="$(printf 'python %s\n' "$pyver"; cat "$req")"
    if [ -x "$dir/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        log "$peer: up to date ($dir)"
        continue
    fi
    log "$peer: creating $dir"
    start=$(date +%s)
    rm -rf "$dir"
    make_venv "$dir"
    "$dir/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    printf '%s\n' "$want" > "$marker"
    log "$peer: installed in $(( $(date +%s) - start )) s"
done
