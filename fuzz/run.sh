#!/usr/bin/env bash
# Builds the fuzz targets once, then runs each for SECS seconds (default 60), as many
# at a time as there are cores. Fails if any target finds a crash, a panic, a
# timeout or an OOM (the input is kept in fuzz/artifacts/<target>/).
#   fuzz/run.sh [SECS] [TARGET...]        (every target by default)
# Stable Rust with RUSTC_BOOTSTRAP=1 is enough (cargo-fuzz needs -Z flags). New
# corpus entries go to fuzz/corpus/<target>/ (not committed); fuzz/seeds/<target>/
# (committed, written by fuzz/seeds.py) is read as a second corpus.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
flags=(-O -a)
if [ -n "${CARGO_TARGET_DIR:-}" ]; then flags+=(--target-dir "$CARGO_TARGET_DIR"); fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(cargo fuzz list); fi
cargo fuzz build "${flags[@]}"
mkdir -p logs
run() {
  local t=$1
  mkdir -p "corpus/$t" "seeds/$t"
  if cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"logs/$t.log" 2>&1; then
    echo "ok    $t: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -Eo '[0-9]+$') runs, $(ls "corpus/$t" | wc -l) corpus entries"
  else
    echo "FAIL  $t (fuzz/logs/$t.log):"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "logs/$t.log" | head -n 20
    return 1
  fi
}
export -f run
export secs
flags_str="${flags[*]}"
export flags_str
failed=0
printf '%s\n' "${targets[@]}" \
  | xargs -P "$(nproc)" -I{} bash -c 'flags=($flags_str); run "$@"' _ {} || failed=1
exit $failed
