#!/usr/bin/env bash
# Interop: the simulated device on a pty served by ser2net (v4, YAML config) as raw TCP
# and as telnet RFC 2217, driven by `hil run --device tcp:…` and `--device rfc2217:…`;
# then once more over RFC 2217 with ser2net restarted mid-run (the link dropped and
# restored): every run must end `N passed, 0 failed`.
# Usage: .ci/ser2net.sh path/to/hil   (needs ser2net: apt-get install ser2net)
set -euo pipefail
source "$(dirname "$(realpath "$0")")/lib.sh"
hil=$(realpath "$1")
command -v ser2net >/dev/null || { echo "ser2net is not installed"; exit 1; }
work=$(mktemp -d)
sim_pid= ser_pid= run_pid=
cleanup() {
  for p in $run_pid $ser_pid $sim_pid; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
scale=20
filter=${SER2NET_FILTER:-steps/}

"$hil" sim --console pty --time-scale "$scale" > sim.out 2>&1 &
sim_pid=$!
for _ in $(seq 50); do grep -q '^console: ' sim.out && break; sleep 0.1; done
pty=$(sed -n 's/^console: //p' sim.out | head -n 1)
test -c "$pty" || { echo "no pty from hil sim:"; cat sim.out; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
raw=$(free_port); tel=$(free_port)
cat > ser2net.yaml <<YAML
%YAML 1.1
---
connection: &raw
  accepter: tcp,127.0.0.1,$raw
  connector: serialdev,$pty,115200n81,local
  options:
    kickolduser: true
connection: &rfc2217
  accepter: telnet(rfc2217),tcp,127.0.0.1,$tel
  connector: serialdev,$pty,115200n81,local
  options:
    kickolduser: true
YAML


start_ser2net() {
  # -n: stay in the foreground; -u: no UUCP lock files; -P: where the pid goes.
  ser2net -n -u -c ser2net.yaml -P "$work/ser2net.pid" >> ser2net.out 2>&1 &
  ser_pid=$!
  # Wait until both ports listen, without connecting: a probe connection would open
  # the pty, and ser2net would turn the next client away while it closes it.
  for _ in $(seq 50); do
    listening "$raw" && listening "$tel" && return 0
    sleep 0.1
  done
  echo "ser2net did not listen on $tel:"; cat ser2net.out; exit 1
}
start_ser2net

check() { # log
  tail -n 1 "$1" | grep -Eq '^[1-9][0-9]* passed, 0 failed$' || { echo "FAILED: $1"; cat "$1"; exit 1; }
  echo "$1: $(tail -n 1 "$1")"
}
run() { # log device
  "$hil" run --matrix classic --filter "$filter" --time-scale "$scale" --jobs 1 \
    --device "$2" --report "$work/report-$1" > "$1.log" 2>&1
}

run raw "tcp:127.0.0.1:$raw" || true
check raw.log
# Let ser2net close the pty behind the raw session before the RFC 2217 one opens it.
sleep 1
run rfc2217 "rfc2217:127.0.0.1:$tel,115200,8N1,none" || true
check rfc2217.log

# ser2net restarted mid-run: after two cases pass, stop it, wait a second, start it.
run restart "rfc2217:127.0.0.1:$tel,115200,8N1,none" &
run_pid=$!
for _ in $(seq 300); do
  [ "$(grep -c '] pass ' restart.log 2>/dev/null || true)" -ge 2 ] && break
  sleep 0.1
done
kill "$ser_pid"; wait "$ser_pid" 2>/dev/null || true
sleep 1
start_ser2net
wait "$run_pid" || true
run_pid=
check restart.log
grep -q 'reconnected to RFC 2217 port' restart.log || { echo "no reconnect in restart.log"; cat restart.log; exit 1; }
grep 'reconnected to\|retry ' restart.log
