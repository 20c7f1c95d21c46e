#!/usr/bin/env bash
# The certificate zoo against third-party tools: every certificate in certs/ through
# `openssl verify` (-x509_strict, -purpose sslserver, host name or IP, -crl_check with
# the CRL the responder serves) and `openssl ocsp` against the running responder, each
# verdict compared with certs/manifest.toml; then each responder fault with curl and
# openssl. Usage: .ci/certs-check.sh path/to/hil
set -euo pipefail
hil=$(realpath "$1")
certs=$(realpath certs)
work=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; true; }
trap 'stop; rm -rf "$work"' EXIT
cd "$work"
# The responder on a free port, not the one the certificates name (another run may
# hold that): the URLs read from the manifest are pointed at it. OCSP answers and CRLs
# do not depend on the address.
named=$(python3 -c 'import tomllib;print(tomllib.load(open("'"$certs"'/manifest.toml","rb"))["responder"])')
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
hostport=127.0.0.1:$port
base=http://$hostport
start() {
  "$hil" responder --certs "$certs" --bind "$hostport" "$@" > responder.out 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q '^ready' responder.out && return; sleep 0.1; done
  cat responder.out; exit 1
}

start
python3 - "$certs" "$base" "$named" <<'PY'
import ipaddress, os, subprocess, sys, tomllib
certs, base, named = sys.argv[1], sys.argv[2], sys.argv[3]
m = tomllib.load(open(os.path.join(certs, "manifest.toml"), "rb"))
for c in m["cert"]:
    for k in ("crl_url", "ocsp_url"):
        if c.get(k):
            c[k] = c[k].replace(named, base, 1)
def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr
bad = []
for c in m["cert"]:
    name = c["name"]
    pems = open(os.path.join(certs, c["file"])).read().split("-----END CERTIFICATE-----")
    pems = [p.strip() + "\n-----END CERTIFICATE-----\n" for p in pems if "BEGIN" in p]
    open(f"{name}.leaf.pem", "w").write(pems[0])
    open(f"{name}.chain.pem", "w").write("".join(pems[1:]))
    args = ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", os.path.join(certs, "root.crt")]
    if len(pems) > 1:
        args += ["-untrusted", f"{name}.chain.pem"]
    addr = c["server_address"]
    try:
        ipaddress.ip_address(addr)
        args += ["-verify_ip", addr]
    except ValueError:
        args += ["-verify_hostname", addr]
    args += ["-crl_check"]
    if c.get("crl_url"):
        der = f"{name}.crl.der"
        rc, out = run("curl", "-sSf", "-o", der, c["crl_url"])
        if rc != 0:
            bad.append(f"{name}: fetching {c['crl_url']}: {out}"); continue
        run("openssl", "crl", "-inform", "DER", "-in", der, "-out", f"{name}.crl.pem")
        args += ["-CRLfile", f"{name}.crl.pem"]
    rc, out = run(*args, f"{name}.leaf.pem")
    want = c["openssl_verify"]
    got_ok = rc == 0 and "OK" in out
    if want == "OK" and not got_ok or want != "OK" and (got_ok or want not in out):
        bad.append(f"{name}: openssl verify expected {want!r}, got: {out.strip()}")
    if c.get("ocsp_url") and c["ocsp_status"] != "none":
        issuer = m["ca"][c["issuer"]]["file"]
        rc, out = run("openssl", "ocsp", "-issuer", os.path.join(certs, issuer), "-cert", f"{name}.leaf.pem",
                      "-url", c["ocsp_url"], "-VAfile", os.path.join(certs, issuer), "-no_nonce")
        if "Response verify OK" not in out or f"{name}.leaf.pem: {c['ocsp_status']}" not in out:
            bad.append(f"{name}: openssl ocsp expected {c['ocsp_status']}, got: {out.strip()}")
    print(f"  {name}: verify {'OK' if got_ok else want}, ocsp {c['ocsp_status']}")
if bad:
    print("\n".join(bad)); sys.exit(1)
print(f"certs: {len(m['cert'])} certificates agree with the manifest (openssl verify, openssl ocsp)")
PY

# Each per-flag verdict of the manifest, derived again with openssl alone (SPEC §3.5):
# expiry from the dates, cn with -checkhost/-checkip, key_usage with -purpose, chain
# with a time-blind openssl verify against the root, revocation by SPEC's steps (OCSP
# if the device can form the request, then the CRL, else a hard fail).
python3 - "$certs" "$base" "$named" <<'PY'
import datetime, ipaddress, os, subprocess, sys, tomllib
certs = sys.argv[1]
m = tomllib.load(open(os.path.join(certs, "manifest.toml"), "rb"))
base, named = sys.argv[2], sys.argv[3]
for c in m["cert"]:
    for k in ("crl_url", "ocsp_url"):
        if c.get(k):
            c[k] = c[k].replace(named, base, 1)
def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr
now = datetime.datetime.now(datetime.timezone.utc)
root = os.path.join(certs, "root.crt")
bad = []
for c in m["cert"]:
    name = c["name"]
    leaf, chain = f"{name}.leaf.pem", f"{name}.chain.pem"
    served = os.path.getsize(chain) > 0
    got = {}
    _, out = run("openssl", "x509", "-noout", "-startdate", "-enddate", "-in", leaf)
    dates = dict(l.split("=", 1) for l in out.strip().splitlines())
    parse = lambda t: datetime.datetime.strptime(t, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    got["expiry"] = "accept" if parse(dates["notBefore"]) <= now <= parse(dates["notAfter"]) else "cert_expired"
    addr = c["server_address"]
    try:
        ipaddress.ip_address(addr); flag = "-checkip"
    except ValueError:
        flag = "-checkhost"
    _, out = run("openssl", "x509", "-noout", flag, addr, "-in", leaf)
    got["cn"] = "accept" if "does match" in out else "cert_name"
    _, out = run("openssl", "x509", "-noout", "-purpose", "-in", leaf)
    got["key_usage"] = "accept" if "SSL server : Yes" in out else "cert_key_usage"
    args = ["openssl", "verify", "-no_check_time", "-CAfile", root] + (["-untrusted", chain] if served else []) + [leaf]
    rc, out = run(*args)
    got["chain"] = "accept" if rc == 0 else "cert_chain"
    issuer_crt = os.path.join(certs, m["ca"][c["issuer"]]["file"]) if c["issuer"] in m["ca"] else None
    issuer_known = served or c["issuer"] == "root"
    verdict = None
    if c.get("ocsp_url") and issuer_known and issuer_crt:
        _, out = run("openssl", "ocsp", "-issuer", issuer_crt, "-cert", leaf, "-url", c["ocsp_url"], "-VAfile", issuer_crt, "-no_nonce")
        if f"{leaf}: good" in out: verdict = "accept"
        elif f"{leaf}: revoked" in out: verdict = "cert_revoked"
    if verdict is None and c.get("crl_url"):
        der = f"{name}.rev.crl"
        rc, _ = run("curl", "-sSf", "-o", der, c["crl_url"])
        if rc == 0:
            _, text = run("openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-text")
            verdict = "cert_revoked" if c["serial"].upper() in text.replace(":", "").upper() else "accept"
    got["revocation"] = verdict or "cert_revocation_unknown"
    for flag, want in c["expect"].items():
        if got[flag] != want:
            bad.append(f"{name}: {flag}: manifest says {want}, openssl says {got[flag]}")
if bad:
    print("\n".join(bad)); sys.exit(1)
print(f"certs: every per-flag verdict of {len(m['cert'])} certificates agrees with openssl")
PY
stop

leaf=valid.leaf.pem
inter="$certs/intermediate.crt"
ocsp() { openssl ocsp -issuer "$inter" -cert "$leaf" -url "$base/ocsp" -VAfile "$inter" -no_nonce "$@" 2>&1 || true; }

# down: connection refused
start --fault down
if curl -sS -o /dev/null "$base/crl/intermediate.crl" 2> curl.err; then echo "down: answered"; exit 1; fi
grep -qi 'refused\|connect' curl.err
stop
# slow: past a client's patience (--time-scale 100: 400 s device time = 4 s)
start --fault slow --time-scale 100
set +e; curl -sS -o /dev/null --max-time 1 "$base/crl/intermediate.crl" 2>/dev/null; rc=$?; set -e
[ "$rc" = 28 ] || { echo "slow: curl exit $rc, expected a timeout (28)"; exit 1; }
stop
# http500
start --fault http500
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/crl/intermediate.crl")" = 500 ]
ocsp | grep -qi 'error\|500' || { echo "http500: openssl ocsp did not fail"; exit 1; }
stop
# malformed
start --fault malformed
curl -sSf -o bad.crl "$base/crl/intermediate.crl"
if openssl crl -inform DER -in bad.crl -noout 2>/dev/null; then echo "malformed: a valid CRL"; exit 1; fi
ocsp | grep -qi 'error' || { echo "malformed: openssl ocsp accepted it"; exit 1; }
stop
# stale_crl: nextUpdate passed
start --fault stale_crl
curl -sSf -o stale.der "$base/crl/intermediate.crl"
openssl crl -inform DER -in stale.der -out stale.pem
set +e
out=$(openssl verify -crl_check -CAfile "$certs/root.crt" -untrusted "$inter" -CRLfile stale.pem "$leaf" 2>&1)
set -e
echo "$out" | grep -q 'CRL has expired' || { echo "stale_crl: $out"; exit 1; }
stop
# wrong_signer: neither the OCSP response nor the CRL verifies with the issuer
start --fault wrong_signer
ocsp | grep -q 'Response Verify Failure' || { echo "wrong_signer: OCSP verified"; exit 1; }
curl -sSf -o forged.der "$base/crl/intermediate.crl"
out=$(openssl crl -inform DER -in forged.der -CAfile "$inter" -noout 2>&1 || true)
echo "$out" | grep -qi 'verify fail\|failure' || { echo "wrong_signer: CRL $out"; exit 1; }
stop
echo "responder faults: down, slow, http500, malformed, stale_crl, wrong_signer behave as scripted (curl, openssl)"
