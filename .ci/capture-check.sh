#!/usr/bin/env bash
# hil run --capture against a real tshark: a planted firmware bug (soft-fail
# revocation) fails an SMTPS and a STARTTLS case; each leaves evidence/CASE.pcapng,
# captured on lo with the servers' TLS keys in a Decryption Secrets Block. tshark,
# given nothing but the file, must show the decrypted SMTP conversation: every command
# of the case's transcript. The raw file must not hold them in clear (they were on the
# wire inside TLS). Needs root (CAP_NET_RAW) and tshark.
# Usage: .ci/capture-check.sh path/to/hil
set -euo pipefail
HIL=${1:?usage: capture-check.sh HIL}
OUT=target/hil-capture
rm -rf "$OUT"
set +e
"$HIL" run --capture --plant soft-fail-revocation --section tls \
  --filter 'server.cert=no_revocation_info,smtp.verify.revocation=on' --report "$OUT" \
  >"$OUT.log" 2>&1
rc=$?
set -e
cat "$OUT.log"
if [ "$rc" != 1 ]; then
  echo "capture-check: hil run exited $rc, expected 1 (the planted bug fails the cases)"; exit 1
fi
grep -q '\[\[ATTACHMENT|evidence/' "$OUT/junit.xml"
grep -q 'href="evidence/' "$OUT/report.html"

python3 - "$OUT" <<'EOF'
import json, subprocess, sys, os
out = sys.argv[1]
checked = 0
for line in open(os.path.join(out, "results.jsonl")):
    r = json.loads(line)
    ev = r.get("evidence")
    if r["verdict"] != "fail":
        assert not ev, f"{r['id']}: a {r['verdict']} case has a capture"
        continue
    assert ev, f"{r['id']}: a failed case without a capture"
    pcap = os.path.join(out, ev)
    streams = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.stream"],
                             check=True, capture_output=True, text=True).stdout.split()
    text = ""
    for s in sorted(set(streams), key=int):
        text += subprocess.run(["tshark", "-r", pcap, "-q", "-z", f"follow,tls,ascii,{s}"],
                               check=True, capture_output=True, text=True).stdout
    said = set(l.strip() for l in text.splitlines())
    raw = open(pcap, "rb").read()
    commands = []
    for t in r["transcripts"]:
        if t["server"] != "smtp":
            continue
        for l in t["lines"]:
            # Lines are objects (docs/results.schema.json): the client's text.
            rest = l["text"] if l["dir"] == "client" else ""
            # Message bodies are summarised, secrets masked: not wire text.
            if rest and not rest.startswith("<") and rest != "." and "***" not in rest:
                commands.append(rest)
    assert any(c.startswith("MAIL FROM:") for c in commands), f"{r['id']}: {commands}"
    after_tls = [c for c in commands if c.upper() != "STARTTLS"]
    for c in after_tls:
        assert c in said, f"{r['id']}: {c!r} not in tshark's decrypted stream of {pcap}:\n{text}"
    mail_from = next(c for c in commands if c.startswith("MAIL FROM:"))
    assert mail_from.encode() not in raw, f"{pcap} holds {mail_from!r} in clear"
    print(f"capture-check: {r['id']}: {len(after_tls)} commands decrypted by tshark from {ev}")
    checked += 1
assert checked >= 2, f"only {checked} failed cases with a capture"
EOF
