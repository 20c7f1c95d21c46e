#!/usr/bin/env bash
# Interop: drive `hil serve` with third-party clients (swaks, curl) over plain SMTP,
# STARTTLS and implicit TLS with AUTH PLAIN, LOGIN and CRAM-MD5, and POP3/POP3S with
# curl; then check the JSON-lines transcripts. Usage: .ci/interop.sh path/to/hil
set -euo pipefail
hil=$(realpath "$1")
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout valid.key -out valid.crt -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
cat > interop.toml <<'TOML'
description = "Interop: every listener kind, AUTH PLAIN, LOGIN and CRAM-MD5, POP3 and POP3S"
[smtp]
auth = ["plain", "login", "cram-md5"]
accounts = [{ user = "printer", password = "s3cret-Pass" }]
policy = { require_auth = true }
[[smtp.listeners]]
kind = "plain"
[[smtp.listeners]]
kind = "starttls"
cert = "valid"
[[smtp.listeners]]
kind = "tls"
cert = "valid"
[pop3]
accounts = [{ user = "printer", password = "s3cret-Pass" }]
[[pop3.listeners]]
kind = "plain"
[[pop3.listeners]]
kind = "tls"
cert = "valid"
[[check]]
steps = [{ expect = "220" }]
TOML
"$hil" serve --scenario interop.toml --certs . --transcripts t.jsonl > serve.out 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q '^ready' serve.out && break; sleep 0.1; done
grep -q '^ready' serve.out || { cat serve.out; exit 1; }
ep() { grep "^  $1 $2 " serve.out | awk '{print $3}'; }
P=$(ep smtp plain); S=$(ep smtp starttls); T=$(ep smtp tls); PP=$(ep pop3 plain); PT=$(ep pop3 tls)
sw() { swaks --server "${1%:*}" --port "${1##*:}" --to a@hil.test --from mfp@hil.test \
  --auth-user printer "${@:2}"; }
sw "$P" --auth PLAIN --auth-password s3cret-Pass > swaks-plain.log
sw "$S" --tls --auth LOGIN --auth-password s3cret-Pass > swaks-starttls.log
sw "$T" --tlsc --auth CRAM-MD5 --auth-password s3cret-Pass > swaks-tls.log
if sw "$P" --auth PLAIN --auth-password wrong > swaks-wrong.log 2>&1; then
  echo "a wrong password was accepted"; exit 1
fi
grep -q '535 5.7.8' swaks-wrong.log
curl -sS --url "smtp://$P" --mail-from mfp@hil.test --mail-rcpt b@hil.test \
  --user printer:s3cret-Pass --upload-file /etc/hostname
curl -sSk --url "smtps://$T" --mail-from mfp@hil.test --mail-rcpt c@hil.test \
  --user printer:s3cret-Pass --upload-file /etc/hostname
curl -sS --url "pop3://$PP/" --user printer:s3cret-Pass | grep -q '^1 '
curl -sSk --url "pop3s://$PT/1" --user printer:s3cret-Pass | grep -q 'Hello from the harness'
sleep 0.5
kill -TERM "$pid"; wait "$pid" || true
grep -q 'stopped; 8 records' serve.out || { cat serve.out; exit 1; }
python3 - t.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
smtp = [r for r in rows if r["server"] == "smtp"]
pop = [r for r in rows if r["server"] == "pop3"]
assert len(smtp) == 6 and len(pop) == 2, (len(smtp), len(pop))
mechs = sorted((a["mechanism"], a["ok"]) for r in smtp for a in r["connection"]["auth"])
assert len(mechs) == 6, mechs
for want in (("CRAM-MD5", True), ("LOGIN", True), ("PLAIN", True), ("PLAIN", False)):
    assert want in mechs, (want, mechs)
by_listener = {}
for r in smtp:
    by_listener.setdefault(r["connection"]["listener"], []).append(r)
for kind in ("starttls", "tls"):
    for r in by_listener[kind]:
        tls = r["connection"]["tls"]
        assert tls and tls["version"].startswith("TLSv1_") and tls["certificate"] == "valid", tls
for r in by_listener["plain"]:
    assert r["connection"]["tls"] is None
delivered = sum(len(r["messages"]) for r in smtp)
assert delivered == 5, delivered
assert [m for r in smtp for m in r["messages"] if m["auth_user"] != "printer"] == []
logins = [l for r in pop for l in r["connection"]["logins"]]
assert len(logins) == 2, logins
text = open(sys.argv[1]).read()
for secret in ("s3cret-Pass", "czNjcmV0LVBhc3M", "AHByaW50ZXIAczNjcmV0"):
    assert secret not in text, f"{secret} in the transcripts"
print(f"interop: {len(smtp)} SMTP and {len(pop)} POP3 connections, AUTH {mechs}, transcripts clean")
PY
