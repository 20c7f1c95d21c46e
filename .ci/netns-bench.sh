#!/usr/bin/env bash
# A two-host bench on one machine: the simulated device in a network namespace of its
# own (hil-dev: 10.77.0.2, fd77::2, fe80::2), the harness in another (hil-bench:
# 10.77.0.1, fd77::1, fe80::1), joined by a veth link. The device's console is served
# by ser2net inside the device's namespace, raw TCP and RFC 2217, and the harness
# reaches it over the link like a bench reaches a console server.
#
#   1. `hil bench-setup` over IPv4, driving the device through its console;
#   2. a tenth of the pairwise matrix over IPv4, console raw TCP, ser2net restarted mid-run;
#   3. another tenth of the pairwise matrix over IPv6 (servers, OCSP responder and CRLs on fd77::1),
#      console RFC 2217;
#   4. the delivery and POP sections over the link-local address fe80::1, the harness
#      binding it with its zone (%vbench) and the device given its own (%vdev);
# Every run must end `N passed, 0 failed`.
# Usage: .ci/netns-bench.sh path/to/hil path/to/mfp-sim   (root; iproute2, ser2net)
set -euo pipefail
source "$(dirname "$(realpath "$0")")/lib.sh"
hil=$(realpath "$1")
sim=$(realpath "$2")
for c in ip ser2net python3; do
  command -v "$c" >/dev/null || { echo "$c is not installed"; exit 1; }
done
H=hil-bench D=hil-dev
work=$(mktemp -d)
sim_pid= ser_pid= run_pid=
cleanup() {
  for p in $run_pid $ser_pid $sim_pid; do kill "$p" 2>/dev/null || true; done
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$D" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
scale=50

inh() { ip netns exec "$H" "$@"; }
ind() { ip netns exec "$D" "$@"; }

ip netns del "$H" 2>/dev/null || true
ip netns del "$D" 2>/dev/null || true
ip netns add "$H"
ip netns add "$D"
ip link add vbench netns "$H" type veth peer name vdev netns "$D"
ip -n "$H" link set lo up
ip -n "$D" link set lo up
ip -n "$H" addr add 10.77.0.1/24 dev vbench
ip -n "$D" addr add 10.77.0.2/24 dev vdev
# nodad: usable at once, without duplicate address detection's wait.
ip -n "$H" -6 addr add fd77::1/64 dev vbench nodad
ip -n "$D" -6 addr add fd77::2/64 dev vdev nodad
ip -n "$H" -6 addr add fe80::1/64 dev vbench nodad
ip -n "$D" -6 addr add fe80::2/64 dev vdev nodad
ip -n "$H" link set vbench up
ip -n "$D" link set vdev up
# Each side sees only its own addresses and the other side over the link.
ip -n "$H" -brief addr show vbench
ip -n "$D" -brief addr show vdev

# The device: mfp-sim on a pty in its namespace, its download service on its address.
ip netns exec "$D" "$sim" --console pty --time-scale "$scale" --downloads 10.77.0.2:0 > sim.out 2>&1 &
sim_pid=$!
for _ in $(seq 50); do grep -q '^console: ' sim.out && break; sleep 0.1; done
pty=$(sed -n 's/^console: //p' sim.out | head -n 1)
test -c "$pty" || { echo "no pty from mfp-sim:"; cat sim.out; exit 1; }

cat > ser2net.yaml <<YAML
%YAML 1.1
---
connection: &raw
  accepter: tcp,10.77.0.2,7001
  connector: serialdev,$pty,115200n81,local
  options:
    kickolduser: true
connection: &rfc2217
  accepter: telnet(rfc2217),tcp,10.77.0.2,7002
  connector: serialdev,$pty,115200n81,local
  options:
    kickolduser: true
YAML

start_ser2net() {
  ip netns exec "$D" ser2net -n -u -c ser2net.yaml -P "$work/ser2net.pid" >> ser2net.out 2>&1 &
  ser_pid=$!
  for _ in $(seq 50); do
    listening 7001 "$D" && listening 7002 "$D" && return 0
    sleep 0.1
  done
  echo "ser2net did not listen:"; cat ser2net.out; exit 1
}
start_ser2net

# Zoos for the bench addresses: one names 10.77.0.1 with its responder there, one
# fd77::1 with its responder on [fd77::1].
inh "$hil" certs --out zoo4 --host 10.77.0.1 --responder http://10.77.0.1:8099 >/dev/null
inh "$hil" certs --out zoo6 --host fd77::1 --responder 'http://[fd77::1]:8099' >/dev/null

check() { # log
  tail -n 1 "$1" | grep -Eq '^[1-9][0-9]* passed, 0 failed$' || { echo "FAILED: $1"; tail -n 80 "$1"; exit 1; }
  echo "$1: $(tail -n 1 "$1")"
}
# The peer addresses the fake servers saw, from a run's results.
peers() { # report-dir
  grep -o 'connection from [^ ]*' "$1/results.jsonl" | sed 's/:[0-9]*$//' | sort | uniq -c
}

echo "--- 1. hil bench-setup over IPv4, console raw TCP"
inh "$hil" bench-setup --bind 10.77.0.1 --certs zoo4 --device tcp:10.77.0.2:7001 \
  --time-scale "$scale" | tee setup.log
grep -q '^  \[ ok \] STARTTLS and the OCSP responder: reached (SMTP from 10.77.0.2:' setup.log
if grep -q FAIL setup.log; then echo "bench-setup: a check failed"; exit 1; fi
sleep 1

echo "--- 2. pairwise over IPv4, console raw TCP, ser2net restarted mid-run"
# A tenth of the (masking-aware, about 1,500-case) pairwise array: this bench checks the
# network path, one case at a time; the whole array runs on the embedded sim in .ci/run.
ip netns exec "$H" "$hil" run --matrix pairwise --shard 1/10 --device tcp:10.77.0.2:7001 --time-scale "$scale" \
  --bind 10.77.0.1 --certs zoo4 --report r4 > v4.log 2>&1 &
run_pid=$!
for _ in $(seq 600); do
  [ "$(grep -c '] pass ' v4.log 2>/dev/null || true)" -ge 10 ] && break
  sleep 0.1
done
kill "$ser_pid"; wait "$ser_pid" 2>/dev/null || true
sleep 1
start_ser2net
wait "$run_pid" || true
run_pid=
check v4.log
grep -q 'reconnected to TCP console 10.77.0.2:7001' v4.log || { echo "no reconnect in v4.log"; tail -n 40 v4.log; exit 1; }
grep 'reconnected to\|retry ' v4.log
peers r4
peers r4 | grep -q ' 10.77.0.2$'
if peers r4 | grep -v ' 10.77.0.2$'; then echo "r4: a peer other than the device"; exit 1; fi
sleep 1

echo "--- 3. pairwise over IPv6, console RFC 2217"
inh "$hil" run --matrix pairwise --seed 2 --shard 2/10 --device rfc2217:10.77.0.2:7002,115200,8N1,none \
  --time-scale "$scale" --bind fd77::1 --certs zoo6 --report r6 > v6.log 2>&1 || true
check v6.log
peers r6
peers r6 | grep -q ' \[fd77::2\]$'
if peers r6 | grep -v ' \[fd77::2\]$'; then echo "r6: a peer other than the device"; exit 1; fi
grep -q 'apply smtp.server=fd77::1 ' v6.log r6/results.jsonl
sleep 1

echo "--- 4. delivery and POP over the link-local address, each side with its own zone"
inh "$hil" run --device tcp:10.77.0.2:7001 --time-scale "$scale" \
  --bind 'fe80::1%vbench' --server-address 'fe80::1%vdev' --matrix exhaustive --filter delivery/ \
  --report rll > ll.log 2>&1 || true
check ll.log
inh "$hil" run --device tcp:10.77.0.2:7001 --time-scale "$scale" \
  --bind 'fe80::1%vbench' --server-address 'fe80::1%vdev' --matrix exhaustive --filter 'pop/' \
  --report rllpop > llpop.log 2>&1 || true
check llpop.log
peers rll
# The device's source is one of its link-local addresses (fe80::2 or the one the
# kernel made from the MAC address).
peers rll | grep -q ' \[fe80::[0-9a-f:]*%[0-9]*\]$'
if peers rll | grep -v ' \[fe80::[0-9a-f:]*%[0-9]*\]$'; then echo "rll: a peer not link-local"; exit 1; fi
sleep 1
