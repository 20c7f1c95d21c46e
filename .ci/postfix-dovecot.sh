#!/usr/bin/env bash
# Interop with real peers: the simulated device (mfp-sim) delivers scans through Postfix
# (SMTP server, SASL by Dovecot) and logs in to Dovecot POP3 first, all on 127.0.0.1 and
# non-standard ports. Usage: .ci/postfix-dovecot.sh path/to/mfp-sim
#
# Run as root on Debian: installs postfix, dovecot-core and dovecot-pop3d when missing
# (services are kept from starting at install time), then runs a private Postfix
# instance (its own config directory and queue under $W, `postfix -c`) and a private
# Dovecot (`dovecot -c`), so /etc/postfix and /etc/dovecot are left as installed.
# Postfix delivers only locally (hil.test) into ~hilrcpt/Maildir; anything else bounces.
#
# Cases, each a scan job on one mfp-sim process, checked in the Maildir (From, To,
# Return-Path, Received with TLS and ESMTPSA, the attachment byte for byte) and in
# Postfix's log (which listener, TLS established, sasl_method, delivered to maildir):
#   STARTTLS :2525 + AUTH PLAIN, STARTTLS + LOGIN, SMTPS :4650 + CRAM-MD5,
#   SMTPS + DIGEST-MD5 (realm hil.test), POP before SMTP (USER/PASS to Dovecot on :1110
#   plain, with STLS, on POP3S :9950, and APOP), and a wrong SMTP password, which must
#   fail with auth_failed and deliver nothing. Postfix has no POP-before-SMTP relay
#   check, so those cases also use AUTH; Dovecot's log must show the POP3 login (and its
#   QUIT) strictly before Postfix's "connect from" (pop_before_smtp.wait=2 makes the gap
#   visible at the logs' one-second resolution).
# Takes about 20 s after the install; logs and configs stay in $W until the next run.
set -euo pipefail

[ $# = 1 ] || { echo "usage: $0 path/to/mfp-sim" >&2; exit 2; }
sim=$(realpath "$1")
[ -x "$sim" ] || { echo "postfix-dovecot: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "postfix-dovecot: must run as root" >&2; exit 2; }

W=/var/lib/smtp-hil-interop         # under /var: Postfix's maillog_file_prefixes
PF=$W/postfix                       # Postfix config directory (main.cf, master.cf)
PQ=$W/spool                         # Postfix queue directory
DV=$W/dovecot                       # Dovecot config, base_dir
RCPT=hilrcpt
PASS='Hil-s3cret-pw'
REALM=hil.test
SMTP_PORT=2525 SMTPS_PORT=4650 POP_PORT=1110 POP3S_PORT=9950

step() { printf '=== postfix-dovecot: %s (%ss)\n' "$1" "$SECONDS"; }

# ---------------------------------------------------------------- install
need_install() {
  command -v postfix >/dev/null && command -v dovecot >/dev/null \
    && [ -x /usr/lib/dovecot/pop3 ] && [ -x /usr/lib/dovecot/pop3-login ] \
    && command -v openssl >/dev/null && command -v python3 >/dev/null && return 1
  return 0
}
if need_install; then
  step "install postfix, dovecot-core, dovecot-pop3d"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep the packages' services (ports 25, 110 …) from starting during the install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  pkgs=(postfix dovecot-core dovecot-pop3d openssl python3)
  if ! apt-cache show "${pkgs[@]}" >/dev/null 2>&1 \
     || ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  if trap -p EXIT | grep -q policy-rc.d; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# ---------------------------------------------------------------- stop a previous run
stop_servers() {
  if [ -f "$PF/main.cf" ] && postfix -c "$PF" status >/dev/null 2>&1; then
    postfix -c "$PF" stop >/dev/null 2>&1 || true
  fi
  local pid
  pid=$(cat "$DV/run/master.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dovecot ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -d /proc/"$pid" ] || break; sleep 0.1; done
  fi
}
stop_servers

step "configure (Postfix in $PF, Dovecot in $DV)"
rm -rf "$W"
mkdir -p "$W" "$PF" "$PQ" "$DV/run" "$W/tls" "$W/pf-data"
chmod 755 "$W"

# The mailbox owner (also the SMTP AUTH and POP3 account).
id "$RCPT" >/dev/null 2>&1 || useradd --create-home --home-dir /home/$RCPT --shell /usr/sbin/nologin $RCPT
home=$(getent passwd $RCPT | cut -d: -f6)
uid=$(id -u $RCPT) gid=$(id -g $RCPT)
rm -rf "$home/Maildir"

# A throwaway certificate for localhost and 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" 2>/dev/null
chmod 600 "$W/tls/key.pem"

cat > "$PF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PQ
data_directory = $W/pf-data
maillog_file = $W/postfix.log
myhostname = mx.hil.test
mydomain = hil.test
myorigin = hil.test
mydestination = hil.test, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error:5.7.1 hil interop: no delivery outside this machine
relay_transport = error:5.7.1 hil interop: no delivery outside this machine
alias_maps =
alias_database =
home_mailbox = Maildir/
mailbox_command =
biff = no
smtputf8_enable = no
smtpd_banner = \$myhostname ESMTP hil interop
smtpd_tls_cert_file = $W/tls/cert.pem
smtpd_tls_key_file = $W/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_authenticated_header = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
EOF
# No chroot, no port 25: only the two listeners of the test.
cat > "$PF/master.cf" <<EOF
$SMTP_PORT inet n - n - - smtpd
  -o syslog_name=postfix/hil-starttls
$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/hil-smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
chown postfix "$W/pf-data"

cat > "$DV/users" <<EOF
$RCPT:{PLAIN}$PASS:$uid:$gid::$home::
EOF
chown root:dovecot "$DV/users"
chmod 640 "$DV/users"
cat > "$DV/dovecot.conf" <<EOF
instance_name = hil-dovecot
base_dir = $DV/run
protocols = pop3
listen = 127.0.0.1
log_path = $W/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
ssl = yes
ssl_cert = <$W/tls/cert.pem
ssl_key = <$W/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 apop
auth_realms = $REALM
auth_default_realm = $REALM
auth_verbose = yes
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = $uid
last_valid_uid = $uid
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DV/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $DV/users
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
}
service auth {
  unix_listener $PQ/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF

# ---------------------------------------------------------------- start
step "start Postfix and Dovecot"
cleanup() {
  local rc=$?
  stop_servers
  if [ "$rc" != 0 ]; then
    echo "--- postfix log (tail)"; tail -n 40 "$W/postfix.log" 2>/dev/null || true
    echo "--- dovecot log (tail)"; tail -n 40 "$W/dovecot.log" 2>/dev/null || true
    echo "postfix-dovecot: FAILED (logs and config kept in $W)" >&2
  fi
  exit "$rc"
}
for port in $SMTP_PORT $SMTPS_PORT $POP_PORT $POP3S_PORT; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "postfix-dovecot: 127.0.0.1:$port is already in use" >&2; exit 1
  fi
done
trap cleanup EXIT
postfix -c "$PF" check
postfix -c "$PF" start >/dev/null
dovecot -c "$DV/dovecot.conf"
for _ in $(seq 100); do
  # Listening sockets from /proc (no probe connection to clutter the servers' logs).
  if python3 - "$SMTP_PORT" "$SMTPS_PORT" "$POP_PORT" "$POP3S_PORT" <<'PY'
import sys
rows = [l.split() for l in open("/proc/net/tcp").read().splitlines()[1:]]
listening = {r[1] for r in rows if r[3] == "0A"}
sys.exit(any(f"0100007F:{int(p):04X}" not in listening for p in sys.argv[1:]))
PY
  then up=1; break; fi
  sleep 0.1
done
[ -n "${up:-}" ] || { echo "postfix-dovecot: servers did not start listening" >&2; exit 1; }
[ -S "$PQ/private/auth" ] || { echo "postfix-dovecot: no Dovecot auth socket in $PQ/private" >&2; exit 1; }

# ---------------------------------------------------------------- the cases
step "run the cases"
export RCPT PASS REALM SMTP_PORT SMTPS_PORT POP_PORT POP3S_PORT
timeout 150 python3 - "$sim" "$home/Maildir" "$W/postfix.log" "$W/dovecot.log" <<'PY'
import email, email.policy, os, re, subprocess, sys, threading, queue, time
from datetime import datetime

SIM, MAILDIR, PFLOG, DVLOG = sys.argv[1:5]
RCPT, PASS, REALM = (os.environ[k] for k in ("RCPT", "PASS", "REALM"))
SMTP_PORT, SMTPS_PORT, POP_PORT, POP3S_PORT = (
    int(os.environ[k]) for k in ("SMTP_PORT", "SMTPS_PORT", "POP_PORT", "POP3S_PORT"))
TO = f"{RCPT}@hil.test"

def fail(msg):
    print(f"postfix-dovecot: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)

class Sim:
    def __init__(self):
        self.p = subprocess.Popen([SIM, "--console", "stdio", "--hostname", "mfp.hil.test"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        self.lines, self.events = queue.Queue(), queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
    def _read(self):
        for line in self.p.stdout:
            line = line.rstrip("\r\n")
            (self.events if line.startswith("EVENT ") else self.lines).put(line)
        self.lines.put(None)
    def cmd(self, line, more=()):
        self.p.stdin.write(line + "\r\n")
        for m in more:
            self.p.stdin.write(m + "\r\n")
        self.p.stdin.flush()
        data = []
        while True:
            try:
                l = self.lines.get(timeout=10)
            except queue.Empty:
                fail(f"no answer from mfp-sim to {line!r}")
            if l is None:
                fail(f"mfp-sim ended while answering {line!r}")
            if l == "OK":
                return data
            if l.startswith("ERR "):
                fail(f"mfp-sim refused {line!r}: {l}")
            data.append(l)
    def job_event(self, n, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                e = self.events.get(timeout=end - time.monotonic())
            except queue.Empty:
                break
            m = re.match(r"EVENT JOB (\d+) (done|failed)(?: (\S+) ?(.*))?$", e)
            if m and int(m.group(1)) == n:
                return m.group(2), m.group(3), m.group(4)
        fail(f"no EVENT for job {n} within {timeout}s: {self.cmd(f'job {n}')}")
    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=5)
        except Exception:
            self.p.kill()

def new_files():
    """The Maildir's messages as {unique name: path}, in new/ or (once a POP3 session
    has seen them) cur/ with flags."""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(MAILDIR, sub)
        for f in os.listdir(d) if os.path.isdir(d) else ():
            out[f.split(":2,")[0]] = os.path.join(d, f)
    return out

def log_lines(path):
    with open(path, errors="replace") as f:
        return f.read().splitlines()

def wait_for(what, pred, timeout=30):
    end = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() > end:
            fail(f"{what}: not within {timeout}s")
        time.sleep(0.2)

def expected(size_kb):
    return bytes(i % 251 for i in range(size_kb * 1024))

def check_message(path, size_kb):
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if msg["From"] != "mfp@hil.test":
        fail(f"{path}: From is {msg['From']!r}, want mfp@hil.test")
    if msg["To"] != TO:
        fail(f"{path}: To is {msg['To']!r}, want {TO}")
    if msg["Return-Path"] != "<admin@hil.test>":
        fail(f"{path}: Return-Path is {msg['Return-Path']!r}, want <admin@hil.test>")
    atts = [p for p in msg.walk() if p.get_content_disposition() == "attachment"]
    if len(atts) != 1:
        fail(f"{path}: {len(atts)} attachments, want 1")
    got = atts[0].get_payload(decode=True)
    want = expected(size_kb)
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        fail(f"{path}: attachment differs: {len(got)} bytes, want {len(want)}; first difference at {first}")
    return msg

def pf_time(line, year):
    # maillog_file lines: "Mon DD HH:MM:SS host program[pid]: text", no year
    return datetime.strptime(f"{year} {line[:15]}", "%Y %b %d %H:%M:%S")

def check_postfix(msg, service, mech):
    """Finds the delivery of msg in Postfix's log: the smtpd of service that received it
    with sasl_method=mech over TLS, and the local delivery into the Maildir."""
    mid = msg["Message-ID"]
    def find():
        lines = log_lines(PFLOG)
        qid = next((m.group(1) for l in lines
                    for m in [re.search(r"postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=(\S+)", l)]
                    if m and m.group(2) == mid), None)
        if not qid:
            return None
        smtpd = [l for l in lines if re.search(rf"postfix/[\w-]+/smtpd\[\d+\]: {qid}: client=", l)]
        sent = [l for l in lines if f": {qid}: to=<{TO}>" in l and "relay=local" in l
                and "status=sent (delivered to maildir)" in l]
        return (qid, smtpd, sent, lines) if smtpd and sent else None
    qid, smtpd, sent, lines = wait_for(f"Postfix log lines for {mid}", find)
    l = smtpd[0]
    m = re.search(r"postfix/([\w-]+)/smtpd\[(\d+)\]: .*sasl_method=([\w-]+), sasl_username=(\S+)", l)
    if not m:
        fail(f"Postfix received {mid} without SASL: {l}")
    svc, pid, method, user = m.groups()
    if svc != service:
        fail(f"{mid} arrived on {svc}, want {service}: {l}")
    if method != mech:
        fail(f"{mid} authenticated with {method}, want {mech}: {l}")
    if not user.startswith(RCPT):
        fail(f"{mid}: sasl_username={user}: {l}")
    # smtpd processes serve several connections: this one's lines are the last
    # "connect from" of that pid before the client= line, and what follows it.
    at = lines.index(l)
    start = max(i for i in range(at) if f"/smtpd[{pid}]: connect from" in lines[i])
    tls = [x for x in lines[start:at] if f"/smtpd[{pid}]: " in x
           and "TLS connection established from" in x]
    if not tls:
        fail(f"{mid}: no TLS connection line for smtpd[{pid}] before {l}")
    return qid, method, tls[-1].split("established from ", 1)[1], lines[start]

def received_header_ok(msg, mid):
    rcv = " ".join(str(h) for h in msg.get_all("Received", []))
    if "ESMTPSA" not in rcv or "(using TLS" not in rcv:
        fail(f"{mid}: the Received header does not show TLS and AUTH: {rcv!r}")

BASE = dict([
    ("email.enabled", "on"), ("email.scan", "on"),
    ("smtp.server", "127.0.0.1"), ("smtp.port", str(SMTP_PORT)),
    ("smtp.ssl_port", str(SMTPS_PORT)), ("smtp.timeout", "30"),
    ("admin.address", "admin@hil.test"), ("device.address", "mfp@hil.test"),
    ("smtp.verify.expiry", "on"), ("smtp.verify.cn", "off"),
    ("smtp.verify.key_usage", "off"), ("smtp.verify.chain", "off"),
    ("smtp.verify.revocation", "off"),
    ("smtp.auth.enabled", "on"), ("smtp.auth.source", "configured"),
    ("smtp.auth.user", RCPT), ("smtp.auth.password", PASS), ("smtp.auth.realm", ""),
    ("envelope_from.mode", "admin"), ("load.mode", "none"),
    ("pop_before_smtp.enabled", "off"), ("pop.server", "127.0.0.1"),
    ("pop.port", str(POP_PORT)), ("pop.ssl_port", str(POP3S_PORT)), ("pop.tls", "none"),
    ("pop.apop", "off"), ("pop.user", RCPT), ("pop.password", PASS),
    ("pop_before_smtp.wait", "2"),
])

# name, settings, SIZE_KB, expected (service, sasl_method) or failure class
CASES = [
    ("PLAIN", {"smtp.tls": "starttls", "smtp.auth.methods": "plain"}, 64,
     ("hil-starttls", "PLAIN")),
    ("LOGIN", {"smtp.tls": "starttls", "smtp.auth.methods": "login"}, 1,
     ("hil-starttls", "LOGIN")),
    ("CRAM-MD5", {"smtp.tls": "smtps", "smtp.auth.methods": "cram-md5"}, 300,
     ("hil-smtps", "CRAM-MD5")),
    ("DIGEST-MD5", {"smtp.tls": "smtps", "smtp.auth.methods": "digest-md5",
                    "smtp.auth.realm": REALM}, 1024, ("hil-smtps", "DIGEST-MD5")),
    ("POP before SMTP", {"smtp.tls": "starttls", "smtp.auth.methods": "plain",
                         "pop_before_smtp.enabled": "on", "pop.tls": "none"}, 17,
     ("hil-starttls", "PLAIN")),
    ("POP before SMTP with STLS", {"smtp.tls": "starttls", "smtp.auth.methods": "plain",
                                   "pop_before_smtp.enabled": "on", "pop.tls": "stls"}, 18,
     ("hil-starttls", "PLAIN")),
    ("POP before SMTP with POP3S", {"smtp.tls": "smtps", "smtp.auth.methods": "cram-md5",
                                    "pop_before_smtp.enabled": "on", "pop.tls": "pop3s"}, 19,
     ("hil-smtps", "CRAM-MD5")),
    ("POP before SMTP with APOP", {"smtp.tls": "starttls", "smtp.auth.methods": "login",
                                   "pop_before_smtp.enabled": "on", "pop.apop": "on"}, 20,
     ("hil-starttls", "LOGIN")),
    ("wrong password", {"smtp.tls": "starttls", "smtp.auth.methods": "plain",
                        "smtp.auth.password": "not-" + PASS}, 5, "auth_failed"),
]

def pop_logins():
    return [l for l in log_lines(DVLOG) if re.search(r" pop3-login: (Info: )?Login: user=<", l)]

sim = Sim()
done = []
try:
    sim.cmd("reset")
    for name, over, size_kb, want in CASES:
        t0 = time.monotonic()
        settings = dict(BASE, **over)
        sim.cmd("apply " + " ".join(f"{k}={v}" for k, v in settings.items()))
        before_files, before_pop = new_files(), len(pop_logins())
        before_pf = len(log_lines(PFLOG))
        out = sim.cmd(f"scan send {TO} {size_kb}")
        m = re.fullmatch(r"JOB (\d+)", out[0]) if len(out) == 1 else None
        if not m:
            fail(f"{name}: scan send answered {out}")
        state, cls, detail = sim.job_event(int(m.group(1)))
        if isinstance(want, str):
            if state != "failed" or cls != want:
                fail(f"{name}: job {state} {cls or ''} {detail or ''}, want failed {want}")
            wait_for(f"{name}: Postfix's SASL failure line",
                     lambda: any(re.search(r"SASL PLAIN authentication failed", l)
                                 for l in log_lines(PFLOG)[before_pf:]))
            wait_for(f"{name}: Dovecot's password mismatch line",
                     lambda: any("Password mismatch" in l for l in log_lines(DVLOG)))
            time.sleep(1)
            if new_files().keys() != before_files.keys():
                fail(f"{name}: a mail was delivered although AUTH failed")
            done.append(name)
            print(f"  {name}: job failed {cls} ({detail}), nothing delivered "
                  f"({time.monotonic() - t0:.1f}s)")
            continue
        if state != "done":
            fail(f"{name}: job {state} {cls} {detail}")
        fresh = wait_for(f"{name}: the mail in {MAILDIR}",
                         lambda: new_files().keys() - before_files.keys())
        if len(fresh) != 1:
            fail(f"{name}: {len(fresh)} new mails, want 1")
        path = new_files()[fresh.pop()]
        msg = check_message(path, size_kb)
        received_header_ok(msg, name)
        qid, method, tls, connect = check_postfix(msg, *want)
        extra = ""
        if settings["pop_before_smtp.enabled"] == "on":
            logins = pop_logins()[before_pop:]
            if len(logins) != 1:
                fail(f"{name}: {len(logins)} new POP3 logins in Dovecot's log, want 1")
            login = logins[0]
            want_tls = {"none": None, "stls": "TLS", "pop3s": "TLS"}[settings["pop.tls"]]
            want_method = "APOP" if settings["pop.apop"] == "on" else "PLAIN"
            if not re.search(rf"user=<{RCPT}(@{re.escape(REALM)})?>, method={want_method},",
                             login) or (want_tls and ", TLS" not in login) \
               or (not want_tls and ", TLS" in login):
                fail(f"{name}: unexpected POP3 login line: {login}")
            mpid = re.search(r"mpid=(\d+)", login).group(1)
            if not any(re.search(rf" pop3\(\S+\)<{mpid}>.*Disconnected: Logged out", l)
                       for l in log_lines(DVLOG)):
                fail(f"{name}: the POP3 session (pid {mpid}) did not end with QUIT")
            t_pop = datetime.strptime(login[:19], "%Y-%m-%d %H:%M:%S")
            t_smtp = pf_time(connect, t_pop.year)
            if not t_pop < t_smtp:
                fail(f"{name}: POP3 login at {t_pop} is not before the SMTP connection at "
                     f"{t_smtp}:\n  {login}\n  {connect}")
            extra = f", POP3 login at {t_pop:%H:%M:%S} before SMTP at {t_smtp:%H:%M:%S}"
        done.append(name)
        print(f"  {name}: {size_kb} KB delivered intact, queue id {qid}, {want[0]}, "
              f"sasl_method={method}, {' '.join(tls.split(': ', 1)[-1].split()[:4])}{extra} "
              f"({time.monotonic() - t0:.1f}s)")
finally:
    sim.close()
print(f"postfix-dovecot: {len(done)} cases as expected ({', '.join(done)})")
PY
