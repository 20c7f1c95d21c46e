#!/usr/bin/env bash
# Time scale: wall time of the matrix's timeout cases (the `timeouts/` section: the
# device waiting out smtp.timeout against servers that hang, stall or greet slowly)
# on the embedded simulated device at --time-scale 1 (device time = wall time, as on
# hardware) and 100, in one invocation; every case must pass at both.
# Usage: bench/timescale.sh [path/to/hil]   (about 5 minutes: the longest case waits
# smtp.timeout = 300 s at scale 1)
set -euo pipefail
hil=$(realpath "${1:-target/release/hil}")
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A wall
for scale in 100 1; do
  start=$(date +%s.%N)
  "$hil" run --filter timeouts/ --time-scale "$scale" --report "$work/r$scale" > "$work/s$scale.log" 2>&1 || true
  end=$(date +%s.%N)
  tail -n 1 "$work/s$scale.log" | grep -Eq '^[1-9][0-9]* passed, 0 failed$' \
    || { echo "time scale $scale: not every case passed"; tail -n 30 "$work/s$scale.log"; exit 1; }
  wall[$scale]=$(python3 -c "print(f'{$end - $start:.2f}')")
  longest=$(python3 - "$work/r$scale/results.jsonl" <<'PY'
import json, sys
print(max(json.loads(l)["millis"] for l in open(sys.argv[1])) / 1000)
PY
)
  echo "time scale $scale: $(tail -n 1 "$work/s$scale.log") in ${wall[$scale]} s (longest case ${longest} s)"
done
python3 -c "print(f'scale 1 / scale 100: {${wall[1]} / ${wall[100]}:.1f}x the wall time')"
