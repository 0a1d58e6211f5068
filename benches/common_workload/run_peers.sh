#!/usr/bin/env bash
# Run the common workload's peers, each in its own venv (see README.md).
#
# Usage: run_peers.sh [peer...]   (default: numpy ezmsg timeflux)
# Env:   REPEAT   runs per peer, best reported (default 3)
#        CW_DATA  workload file (default <repo>/target/common-workload/workload.f32)
#        CW_VENVS, PYTHON  as for setup.sh
#
# stdout: data.py's JSON line, then one JSON line per peer (each has a "peer" key). Setup
# messages go to stderr; each peer's stderr (framework logging) goes to
# target/common-workload/<peer>.log and is shown only if the peer fails. Exits non-zero if any
# peer failed (for instance on check values that do not match), after running the others.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="${CW_VENVS:-$root/target/bench-venvs}"
export CW_VENVS="$venvs"
out_dir="$root/target/common-workload"
data="${CW_DATA:-$out_dir/workload.f32}"
repeat="${REPEAT:-3}"
peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(numpy ezmsg timeflux)

mkdir -p "$out_dir" "$(dirname "$data")"
bash "$here/setup.sh" numpy "${peers[@]}"

# The data file is generated once (with the numpy peer's venv) and checked by data.py itself.
"$venvs/numpy/bin/python" "$here/data.py" --out "$data"

status=0
for peer in "${peers[@]}"; do
    log="$out_dir/$peer.log"
    if ! "$venvs/$peer/bin/python" "$here/peer_$peer.py" --data "$data" --repeat "$repeat" 2>"$log"; then
        echo "run_peers.sh: peer $peer failed; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        status=1
    fi
done
exit $status
