#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs to fuzz/seeds/<target>/ (committed), from the
scenario library, the sim profile, the certificate zoo and a few hand-written
conversations. Run from anywhere: python3 fuzz/seeds.py. The input formats (a flags
byte first, NUL between messages) are described in each fuzz_targets/<target>.rs."""

import base64
import hashlib
import pathlib
import shutil
import subprocess
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def body(n):
    # As harness/tests/scenarios.rs sends `send_body`.
    out = b""
    while len(out) < n:
        line_len = max(1, min(78, n - len(out)))
        out += b"x" * max(1, line_len - 2) + b"\r\n"
    return out + b".\r\n"


def check_stream(check):
    out = b""
    for st in check["steps"]:
        if "send" in st:
            out += st["send"].encode() + b"\r\n"
        if "send_raw" in st:
            out += st["send_raw"].encode()
        if "send_body" in st:
            out += body(min(st["send_body"], 2000))
    return out


def scenarios():
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        text = path.read_text()
        write("scenario", path.name, text)
        sc = tomllib.loads(text)
        for i, check in enumerate(sc.get("check", [])):
            server = check.get("server", "smtp")
            cfg = sc.get(server, {})
            kinds = [l["kind"] for l in cfg.get("listeners", [{"kind": "plain"}])]
            kind = check.get("listener", kinds[0])
            stream = check_stream(check)
            name = f"{path.stem}-{i}"
            if server == "smtp":
                flags = {"plain": 0, "starttls": 0x01, "tls": 0x02}[kind]
                if not cfg.get("auth_before_tls", True):
                    flags |= 0x04
                if cfg.get("policy", {}).get("pop_before_smtp_window_s"):
                    flags |= 0x08
                write("smtp_session", name, bytes([flags]) + stream)
                write("smtp_session", name + "-faults", bytes([flags | 0x10]) + stream)
            else:
                flags = 0x01 if kind == "starttls" else 0
                if cfg.get("apop", True):
                    flags |= 0x02
                if cfg.get("refuse_apop", False):
                    flags |= 0x04
                write("pop3_session", name, bytes([flags]) + stream)
                write("pop3_session", name + "-faults", bytes([flags | 0x08]) + stream)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def smtp_client():
    ehlo = "250-mx.hil.test Hello mfp-sim\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
    tail = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 queued\r\n221 2.0.0 Bye\r\n"
    plain = "220 mx.hil.test ESMTP\r\n" + ehlo + "250 PIPELINING\r\n" + tail
    write("device_smtp_client", "plain", b"\x00" + plain.encode())
    write("device_smtp_client", "plain-bytewise", b"\xc0" + plain.encode())
    write("device_smtp_client", "smtps", b"\x41" + plain.encode())
    starttls = ("220 mx ESMTP\r\n" + ehlo + "250 STARTTLS\r\n220 2.0.0 Ready\r\n"
                + ehlo + "250 AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 XOAUTH2\r\n235 2.7.0 ok\r\n" + tail)
    write("device_smtp_client", "starttls-auth", b"\x06" + starttls.encode())
    write("device_smtp_client", "starttls-454", b"\x03" + ("220 mx\r\n" + ehlo + "250 STARTTLS\r\n454 4.7.0 no TLS\r\n").encode())
    auth = "220 mx\r\n" + ehlo + "250 AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 XOAUTH2\r\n"
    login = auth + f"334 {b64('Username:')}\r\n334 {b64('Password:')}\r\n235 2.7.0 ok\r\n" + tail
    write("device_smtp_client", "auth-login", bytes([0x24]) + login.encode())
    cram = auth + f"334 {b64('<1896.697170952@mx.hil.test>')}\r\n235 2.7.0 ok\r\n" + tail
    write("device_smtp_client", "auth-cram", bytes([0x24]) + cram.encode())
    chal = 'realm="hil.test",realm="other.test",nonce="OA6MG9tEQGm2hh",qop="auth",charset=utf-8,algorithm=md5-sess'
    digest = auth + f"334 {b64(chal)}\r\n334 {b64('rspauth=ea40f60335c427b5527b84dbabcdfffd')}\r\n235 2.7.0 ok\r\n" + tail
    write("device_smtp_client", "auth-digest", bytes([0x14]) + digest.encode())
    write("device_smtp_client", "auth-digest-realm", bytes([0x14 | 0x10]) + digest.encode())
    err = b64('{"status":"400","schemes":"Bearer","scope":"mail"}')
    xo = auth + f"334 {err}\r\n535 5.7.8 no\r\n"
    write("device_smtp_client", "auth-xoauth2-refused", bytes([0x34]) + xo.encode())
    write("device_smtp_client", "auth-535", bytes([0x04]) + (auth + "535 5.7.8 invalid\r\n").encode())
    write("device_smtp_client", "helo-fallback", b"\x00" + ("220 mx\r\n502 5.5.1 no EHLO\r\n250 mx\r\n" + tail).encode())
    write("device_smtp_client", "greeting-554", b"\x00" + b"554 5.7.1 no service\r\n")


def pop_client():
    ok = "+OK pop.hil.test POP3 ready <12345.678@pop.hil.test>\r\n"
    write("device_pop_client", "userpass", b"\x00" + (ok + "+OK\r\n+OK logged in\r\n+OK bye\r\n").encode())
    write("device_pop_client", "apop", b"\x01" + (ok + "+OK maildrop\r\n+OK bye\r\n").encode())
    write("device_pop_client", "stls-userpass", b"\x02" + (ok + "+OK Begin TLS\r\n+OK\r\n+OK\r\n-ERR some deleted messages not removed\r\n").encode())
    write("device_pop_client", "stls-apop", b"\x03" + (ok + "+OK Begin TLS\r\n+OK\r\n+OK\r\n").encode())
    write("device_pop_client", "apop-refused", b"\x01" + (ok + "-ERR [AUTH] no APOP\r\n").encode())


def console():
    lines = [
        "help", "show", "get smtp.server", "set smtp.server mx.hil.test",
        'apply smtp.server=mx.hil.test smtp.port=25 email.enabled=on email.scan=on smtp.auth.user="a b"',
        "apply smtp.auth.methods=plain,cram-md5 smtp.tls=starttls", "set smtp.auth.password \"p\\\"w\\\\\"",
        "clock set 2030-01-02T03:04:05Z", "clock get", "user add alice pw alice@hil.test",
        "notify add ops@hil.test", "scan send a@hil.test,b@hil.test 10 alice", "alert raise paper_jam",
        "counter send-now", "job 1", "reset", "bogus command", "set k \"open",
    ]
    write("console", "commands", ("\r\n".join(lines) + "\r\n").encode())
    root = next(p for p in sorted((ROOT / "certs").glob("*.crt")) if "root" in p.name)
    write("console", "cert-import", b"cert import\n" + root.read_bytes() + b"get smtp.server\n")
    write("console", "cert-import-bad", b"cert import\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def partial():
    enclosed = (b"Subject: scan\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
                b"Message-ID: <orig@hil.test>\r\n\r\n" + b"line one\r\nline two\r\nline three\r\n")
    cut = [enclosed[:60], enclosed[60:120], enclosed[120:]]
    frags = []
    for n, part in enumerate(cut, 1):
        head = (f"From: mfp@hil.test\r\nTo: a@hil.test\r\nSubject: [{n}/3] scan\r\n"
                f"Message-ID: <frag{n}@hil.test>\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: message/partial; id=\"abc@hil.test\"; number={n}; total=3\r\n\r\n")
        frags.append(head.encode() + part)
    write("partial", "three", b"\0".join(frags))
    write("partial", "out-of-order", b"\0".join([frags[2], frags[0], frags[1]]))
    write("partial", "folded", frags[0].replace(b"; number=1", b";\r\n number=1") + b"\0" + frags[1] + b"\0" + frags[2])


def http_response():
    ocsp = b"0\x03\n\x01\x03"  # an OCSPResponse of status tryLater
    crl = (ROOT / "certs" / "intermediate.crl").read_bytes()
    ok = b"HTTP/1.1 200 OK\r\n"
    length = ok + b"Content-Type: application/ocsp-response\r\nContent-Length: 5\r\n\r\n" + ocsp
    write("device_http_response", "length", b"\x40" + length)
    write("device_http_response", "length-bytewise", b"\x00" + length)
    chunks = b"".join(b"%x\r\n" % len(crl[i:i + 500]) + crl[i:i + 500] + b"\r\n"
                      for i in range(0, len(crl), 500))
    chunked = ok + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0;ext=1\r\nX-Trailer: t\r\n\r\n"
    write("device_http_response", "chunked-crl", b"\x07" + chunked)
    write("device_http_response", "close-framed", b"\x40" + b"HTTP/1.0 404 Not Found\r\n\r\nno such CRL")
    # The shapes of issue 18's hostile server.
    write("device_http_response", "chunk-size-max", b"\x40" + ok + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc")
    write("device_http_response", "huge-length", b"\x40" + ok + b"Content-Length: 18446744073709551615\r\n\r\nabc")
    write("device_http_response", "many-headers", b"\x40" + ok + b"X-Pad: a\r\n" * 120 + b"\r\n")


def ocsp():
    """OCSP responses about certs/valid.crt from its issuer, made by `openssl ocsp`
    (good, revoked, unknown; producedAt is the time of the run), and hand-made ones."""
    write("device_ocsp", "try-later", b"0\x03\n\x01\x03")
    write("device_ocsp", "unauthorized", b"0\x03\n\x01\x06")
    certs = ROOT / "certs"
    if shutil.which("openssl") is None:
        print("device_ocsp: no openssl; only the hand-made seeds")
        return
    serial = subprocess.run(["openssl", "x509", "-in", certs / "valid.crt", "-noout", "-serial"],
                            check=True, capture_output=True, text=True).stdout.strip().split("=")[1]
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        subprocess.run(["openssl", "ocsp", "-issuer", certs / "intermediate.crt", "-cert", certs / "valid.crt",
                        "-no_nonce", "-reqout", t / "req.der"], check=True, capture_output=True)
        for name, line in [("good", f"V\t450101000000Z\t\t{serial}\tunknown\t/CN=localhost\n"),
                           ("revoked", f"R\t450101000000Z\t250601000000Z\t{serial}\tunknown\t/CN=localhost\n"),
                           ("unknown", "V\t450101000000Z\t\t01\tunknown\t/CN=other\n")]:
            (t / "index.txt").write_text(line)
            subprocess.run(["openssl", "ocsp", "-index", t / "index.txt", "-rsigner", certs / "intermediate.crt",
                            "-rkey", certs / "intermediate.key", "-CA", certs / "intermediate.crt",
                            "-reqin", t / "req.der", "-respout", t / f"{name}.der", "-ndays", "30"],
                           check=True, capture_output=True)
            write("device_ocsp", name, (t / f"{name}.der").read_bytes())


def crl():
    for path in sorted((ROOT / "certs").glob("*.crl")):
        data = path.read_bytes()
        write("device_crl", path.stem, b"\x01" + data)
        write("device_crl", path.stem + "-unchecked", b"\x00" + data)


def profile():
    shutil.copy(ROOT / "fixtures" / "devices" / "sim.toml", OUT / "profile" / "sim.toml")


if __name__ == "__main__":
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "profile").mkdir(parents=True)
    scenarios()
    smtp_client()
    pop_client()
    console()
    partial()
    http_response()
    ocsp()
    crl()
    profile()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
