#!/usr/bin/env bash
# Where our fake SMTP server's instructions go under load (BENCHMARKS.md, section 2):
# `hil serve --scenario scenarios/plain-ok.toml` under callgrind, loaded by smtp-source,
# then callgrind_annotate, inclusive, the top entries.
#
#   bench/profile.sh [SIZE [MESSAGES [SESSIONS]]]    default: 1048576 50 10
#   bench/profile.sh 1024 2000                        the 1 KB path
#
# Builds hil with line tables (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only) into
# ${CARGO_TARGET_DIR:-target}/profiling, so the ordinary release build is left alone.
# Needs valgrind and smtp-source (bench/server.sh installs smtp-source). The callgrind
# file stays in bench/.work/ for `callgrind_annotate` by hand.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-1048576} msgs=${2:-50} sessions=${3:-10}
work=${BENCH_WORK:-$root/bench/.work}
target=${CARGO_TARGET_DIR:-$root/target}/profiling
command -v valgrind >/dev/null || { echo "profile: valgrind is needed" >&2; exit 2; }
[ -x /usr/sbin/smtp-source ] || { echo "profile: smtp-source is needed (bench/server.sh --quick installs it)" >&2; exit 2; }

(cd "$root" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$target \
  cargo build --release --locked -q -p hil --bin hil)
mkdir -p "$work"
out=$work/callgrind-$size-$msgs.out
valgrind --tool=callgrind --callgrind-out-file="$out" "$target/release/hil" serve \
  --scenario "$root/scenarios/plain-ok.toml" --bind 127.0.0.1 \
  --transcripts "$work/profile-transcripts.jsonl" > "$work/profile-serve.log" 2> "$work/profile-valgrind.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q '^ready' "$work/profile-serve.log" && break; sleep 0.1; done
addr=$(awk '$1 == "smtp" && $2 == "plain" {print $3}' "$work/profile-serve.log")
[ -n "$addr" ] || { cat "$work/profile-serve.log" "$work/profile-valgrind.log"; exit 1; }
/usr/sbin/smtp-source -s "$sessions" -m "$msgs" -l "$size" "$addr"
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "callgrind: $msgs messages of $size bytes over $sessions sessions: $total instructions," \
  "$((total / msgs)) per message (startup included); $out"
callgrind_annotate --inclusive=yes "$out" 2>/dev/null \
  | grep -E '^ *[0-9,]+ +\(' | grep -vE 'tokio-[0-9.]+/src/runtime|std/src/(rt|sys|thread)|libc-start|pthread_create|below main|ld-linux|boxed.rs|function.rs' \
  | head -n 40 | cut -c1-200
