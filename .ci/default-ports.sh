#!/usr/bin/env bash
# SPEC's default ports (issue 19): `hil run --default-ports` in a network namespace of
# its own (so the privileged ports 25, 465, 110 and 995 are this run's alone) runs
# the delivery, POP and TLS sections on the embedded sim. Every case must pass, and
# the devices must have kept their factory ports: a plain case sets no smtp.port, an
# SMTPS case with the valid certificate no smtp.ssl_port, a POP case on the plain
# listener no pop.port and one over POP3S no pop.ssl_port — each record's console
# shows the apply line, what the harness set after `reset`.
# Usage: .ci/default-ports.sh path/to/hil   (root; iproute2, python3)
set -euo pipefail
hil=$(realpath "$1")
NS=hil-ports
work=$(mktemp -d)
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
cd "$(dirname "$0")/.."
ip netns exec "$NS" "$hil" run --default-ports --section delivery --section pop \
  --section tls --report "$work/r" | tail -n 3
python3 - "$work/r/results.jsonl" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r["id"] for r in records if r["verdict"] != "pass"]
assert not bad, f"not passed: {bad[:5]}"
def keys(r):
    # The keys of the console's apply line: what the harness set after reset.
    for line in r["console"]:
        if line["dir"] == "harness" and line["text"].startswith("apply "):
            return {w.split("=", 1)[0] for w in line["text"].split()[1:]}
    return set()
seen = {"smtp.port": 0, "smtp.ssl_port": 0, "pop.port": 0, "pop.ssl_port": 0}
for r in records:
    d, k = r["dims"], keys(r)
    reached = any(t["server"] == "smtp" for t in r["transcripts"])
    pop = any(t["server"] == "pop3" for t in r["transcripts"])
    tls = d.get("smtp.tls", "none")
    listener = r["scenario"].get("listener")
    cert = r["scenario"].get("certificate") or "valid"
    if reached and tls == "none" and listener == "plain":
        assert "smtp.port" not in k, (r["id"], r["settings"])
        seen["smtp.port"] += 1
    if reached and tls == "smtps" and listener == "tls" and cert == "valid":
        assert "smtp.ssl_port" not in k, (r["id"], r["settings"])
        seen["smtp.ssl_port"] += 1
    if pop and d.get("pop.tls", "none") == "none":
        assert "pop.port" not in k, (r["id"], r["settings"])
        seen["pop.port"] += 1
    if pop and d.get("pop.tls") == "pop3s" and cert == "valid":
        assert "pop.ssl_port" not in k, (r["id"], r["settings"])
        seen["pop.ssl_port"] += 1
missing = [p for p, n in seen.items() if n == 0]
assert not missing, f"no case kept the default {missing}: {seen}"
print(f"{len(records)} cases passed on SPEC's default ports; cases that kept each default: {seen}")
PY
# A device whose factory port is not SPEC's fails there (a planted bug, mfp-sim --quirk).
ip netns exec "$NS" "$hil" run --default-ports --section delivery --plant factory-port-587 \
  --report "$work/p" > "$work/p.log" 2>&1 || true
python3 - "$work/p/results.jsonl" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
failed = [r for r in records if r["verdict"] == "fail"]
assert failed, "factory-port-587: no case failed"
assert all("connect" in json.dumps(r["observed"]) for r in failed), [r["id"] for r in failed][:5]
print(f"factory-port-587: {len(failed)} of {len(records)} cases failed, each on the connect")
PY
