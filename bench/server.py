#!/usr/bin/env python3
"""Fake SMTP server throughput and memory, side by side with real peers.

Called by bench/server.sh (which installs what is missing and builds hil); see
BENCHMARKS.md sections 2 and 3 for what is measured and why.

Throughput: for each (sessions, message size), in each of --rounds rounds, the three
servers are started afresh and loaded in turn by the same Postfix `smtp-source` command
(only -m, the message count, is calibrated per server in the first round so that every
measurement lasts about --seconds); the table shows the median rate per server and the
ratios of those medians, and the CPU time per message of each server and of
smtp-source. Memory: VmHWM (/proc/PID/status) of each server with --idle idle sessions
(greeting read, then silence), and the highest under each load.

Standard library only; loopback only; every port is picked free by the kernel.
"""

import argparse
import datetime
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

SIZES = {"1 KB": 1024, "1 MB": 1024 * 1024}
SESSIONS = [1, 10, 100]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(val.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User plus system CPU time of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def read_line(sock, limit=4096):
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(limit)
        if not chunk:
            break
        data += chunk
    return data


class Server:
    """One server process on a loopback port, its output in WORK/NAME-N.log."""

    count = 0

    def __init__(self, name, args, work):
        self.name = name
        self.args = args
        self.work = work
        self.proc = None
        self.port = None
        self.sent = 0  # messages smtp-source sent, each on a connection of its own

    def command(self, port):
        raise NotImplementedError

    def start(self):
        Server.count += 1
        self.port = free_port()
        self.logfile = os.path.join(self.work, f"{self.name}-{Server.count}.log")
        cmd = self.command(self.port)
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.work)
        self.wait_ready()
        return self

    def wait_ready(self, limit=20.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if read_line(s).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        read_line(s)
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}: {self.tail()}")

    def tail(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def memory(self):
        return proc_status(self.proc.pid)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Ours(Server):
    def __init__(self, name, args, work, hil=None):
        super().__init__(name, args, work)
        self.hil = hil or args.hil

    def command(self, port):
        # hil serve picks its own port (the scenario says port 0); read it from stdout.
        self.transcripts = os.path.join(self.work, f"transcripts-{Server.count}.jsonl")
        return [self.hil, "serve", "--scenario", self.args.scenario,
                "--bind", "127.0.0.1", "--transcripts", self.transcripts]

    def wait_ready(self, limit=20.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hil serve exited at start: {self.tail()}")
            text = self.tail()
            if "\nready" in text:
                for line in text.splitlines():
                    words = line.split()
                    if words[:2] == ["smtp", "plain"]:
                        self.port = int(words[2].rsplit(":", 1)[1])
                        return super().wait_ready(limit)
                raise RuntimeError(f"hil serve shows no plain SMTP listener: {text}")
            time.sleep(0.05)
        raise RuntimeError(f"hil serve not ready: {self.tail()}")

    def stop(self):
        if self.proc is None:
            return
        super().stop()
        # The recording is part of the work measured: every connection must be in the
        # transcripts (one JSON line each; the readiness probe adds one). They are
        # removed afterwards: a run writes hundreds of MB.
        try:
            with open(self.transcripts, "rb") as f:
                lines = sum(1 for _ in f)
            os.remove(self.transcripts)
        except OSError:
            lines = 0
        if lines < self.sent:
            raise RuntimeError(f"{self.name}: {self.sent} messages sent, "
                               f"{lines} connections in its transcripts")


class Sink(Server):
    def command(self, port):
        cmd = [self.args.smtp_sink]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        # -m: most concurrent sessions (default 256; the idle test opens more).
        return cmd + ["-m", str(max(self.args.idle, 256) + 100), f"127.0.0.1:{port}", "1024"]


class Aiosmtpd(Server):
    def command(self, port):
        return [self.args.aiosmtpd_python, "-m", "aiosmtpd", "-n",
                "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]


def stop_all(servers):
    """Stops every server, then raises the first problem one of them had."""
    problem = None
    for srv in servers:
        try:
            srv.stop()
        except RuntimeError as e:
            problem = problem or e
    if problem:
        raise problem


SERVERS = [("ours", Ours), ("smtp-sink", Sink), ("aiosmtpd", Aiosmtpd)]


class Run:
    """One smtp-source run: wall seconds, CPU seconds of the server and of smtp-source."""

    def __init__(self, seconds, server_cpu, source_cpu, problem):
        self.seconds = seconds
        self.server_cpu = server_cpu
        self.source_cpu = source_cpu
        self.problem = problem


def source(args, server, sessions, size, msgs):
    """Runs smtp-source once against `server`."""
    cmd = [args.smtp_source, "-s", str(sessions), "-l", str(size), "-m", str(msgs),
           f"127.0.0.1:{server.port}"]
    errfile = os.path.join(args.work, "smtp-source.err")
    cpu0 = cpu_seconds(server.proc.pid)
    t0 = time.perf_counter()
    with open(errfile, "w+b") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                             stdin=subprocess.DEVNULL)
        # wait4 for smtp-source's own CPU time (the load generator shares the cores).
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        dt = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip()
    server_cpu = cpu_seconds(server.proc.pid) - cpu0
    server.sent += msgs
    problem = None
    if p.returncode != 0 or stderr:
        problem = f"{' '.join(cmd)}: exit {p.returncode}: {stderr[:300]}"
    return Run(dt, server_cpu, usage.ru_utime + usage.ru_stime, problem)


def calibrate(args, server, sessions, size):
    """A message count for which one smtp-source run lasts about args.seconds."""
    msgs = max(sessions, 4 if size > 64 * 1024 else 40)
    while True:
        run = source(args, server, sessions, size, msgs)
        if run.problem:
            raise RuntimeError(f"{server.name}: {run.problem}")
        dt = run.seconds
        if dt >= min(0.5, args.seconds / 3) or msgs >= 10_000_000:
            break
        msgs = int(msgs * max(2.0, min(10.0, 0.6 / max(dt, 1e-3))))
    rate = msgs / dt
    return max(2 * sessions, int(rate * args.seconds))


def throughput(args, results, memory):
    """Each round starts every server afresh: on this machine one process runs a whole
    measurement fast or slow (up to 2x apart at 1 session, by where its threads and
    smtp-source land), so rounds of one process would not sample that."""
    configs = [(s, z) for z in args.sizes for s in args.sessions]
    for sessions, size_name in configs:
        size = SIZES[size_name]
        counts = {}
        runs = {name: [] for name, _ in SERVERS}
        peak = {name: {} for name, _ in SERVERS}
        for r in range(args.rounds):
            servers = []
            try:
                for name, cls in SERVERS:
                    servers.append((name, cls(name, args, args.work).start()))
                for name, srv in servers:
                    if name not in counts:
                        counts[name] = args.messages or calibrate(args, srv, sessions, size)
                    run = source(args, srv, sessions, size, counts[name])
                    if run.problem:
                        raise RuntimeError(f"{name}: {run.problem}")
                    runs[name].append(run)
                    n = counts[name]
                    log(f"  {sessions:>3} sessions, {size_name}, round {r + 1}: {name:<9} "
                        f"{n:>7} msgs in {run.seconds:6.2f} s = {n / run.seconds:9.1f}/s; "
                        f"CPU server {run.server_cpu:5.2f} s, smtp-source {run.source_cpu:5.2f} s")
                    m = srv.memory()
                    if m.get("VmHWM", 0) > peak[name].get("VmHWM", 0):
                        peak[name] = m
            finally:
                stop_all(s for _, s in servers)
        results[(sessions, size_name)] = (counts, runs)
        memory[(sessions, size_name)] = peak


def idle(args):
    """VmRSS before and VmHWM with args.idle idle sessions, per server."""
    out = {}
    for name, cls in SERVERS:
        srv = cls(name, args, args.work)
        socks = []
        try:
            srv.start()
            before = srv.memory()
            for i in range(args.idle):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                greeting = read_line(s)
                if not greeting.startswith(b"220"):
                    raise RuntimeError(f"{name}: session {i + 1}: no greeting: {greeting!r}")
                socks.append(s)
            time.sleep(1.0)
            # Every session is still open (a server that dropped some would look lean).
            alive = 0
            for s in socks:
                s.setblocking(False)
                try:
                    alive += 1 if s.recv(1) else 0
                except BlockingIOError:
                    alive += 1
                finally:
                    s.setblocking(True)
            if alive != args.idle:
                raise RuntimeError(f"{name}: {args.idle - alive} idle sessions were closed")
            out[name] = (before, srv.memory())
            log(f"  idle {args.idle}: {name:<9} VmRSS before {before.get('VmRSS', 0)} KiB, "
                f"VmHWM {out[name][1].get('VmHWM', 0)} KiB")
        finally:
            for s in socks:
                s.close()
            stop_all([srv])
    return out


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine(args):
    model = "?"
    mem = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    postfix = sh(["dpkg-query", "-W", "-f", "${Version}", "postfix"])
    aio = sh([args.aiosmtpd_python, "-c", "import aiosmtpd; print(aiosmtpd.__version__)"])
    py = sh([args.aiosmtpd_python, "-c", "import platform; print(platform.python_version())"])
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("nproc", str(os.cpu_count())),
        ("CPU", model),
        ("RAM", mem),
        ("kernel", platform.release()),
        ("rustc", sh(["rustc", "--version"])),
        ("hil", f"{args.hil} (commit {sh(['git', 'rev-parse', '--short', 'HEAD'])})"),
        ("smtp-source, smtp-sink", f"postfix {postfix}"),
        ("aiosmtpd", f"{aio} on CPython {py} (handler aiosmtpd.handlers.Sink)"),
        ("load average at start", open("/proc/loadavg").read().split(" ", 3)[:3]),
    ]


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def table(w, head, rows):
    w("| " + " | ".join(head) + " |")
    w("|" + "|".join("---" if h in ("size", "server") else "---:" for h in head) + "|")
    for r in rows:
        w("| " + " | ".join(r) + " |")
    w("")


def report(args, info, results, memory, idles, seconds):
    names = [n for n, _ in SERVERS]
    lines = []
    w = lines.append
    w("Machine (a shared 2-core machine: other builds and runs went on beside the bench, so")
    w("only the ratios within one run mean much; absolute figures move from run to run):")
    w("")
    for k, v in info:
        w(f"- {k}: {' '.join(v) if isinstance(v, list) else v}")
    w(f"- load average at end: {' '.join(open('/proc/loadavg').read().split(' ', 3)[:3])}")
    w(f"- bench wall time: {seconds:.0f} s")
    w("")
    if results:
        w(f"Throughput, messages per second (median of {args.rounds} rounds, each with every "
          f"server started afresh and loaded in turn by smtp-source -s SESSIONS -l SIZE "
          f"-m COUNT, COUNT per server for ~{args.seconds:g} s):")
        w("")
        rows = []
        for (sessions, size), (counts, runs) in results.items():
            med = {n: statistics.median(counts[n] / r.seconds for r in rs)
                   for n, rs in runs.items()}
            rows.append([str(sessions), size] + [fmt_rate(med[n]) for n in names]
                        + [f"{med['ours'] / med['smtp-sink']:.2f}",
                           f"{med['ours'] / med['aiosmtpd']:.1f}"])
        table(w, ["sessions", "size"] + names + ["ours / smtp-sink", "ours / aiosmtpd"], rows)
        w("CPU time per message, microseconds (median of the rounds; user + system, all "
          "threads), of each server, and of smtp-source while it loaded each:")
        w("")
        rows = []
        for (sessions, size), (counts, runs) in results.items():
            srv = {n: statistics.median(r.server_cpu for r in rs) / counts[n] * 1e6
                   for n, rs in runs.items()}
            gen = {n: statistics.median(r.source_cpu for r in rs) / counts[n] * 1e6
                   for n, rs in runs.items()}
            rows.append([str(sessions), size] + [f"{srv[n]:,.0f}" for n in names]
                        + [" / ".join(f"{gen[n]:,.0f}" for n in names)])
        table(w, ["sessions", "size"] + names + ["smtp-source (" + " / ".join(names) + ")"],
              rows)
        w("Every round (msgs/s; COUNT in brackets):")
        w("")
        rows = []
        for (sessions, size), (counts, runs) in results.items():
            rows.append([str(sessions), size] + [
                ", ".join(fmt_rate(counts[n] / r.seconds) for r in runs[n])
                + f" [{counts[n]}]" for n in names])
        table(w, ["sessions", "size"] + names, rows)
    if idles:
        w(f"Memory with {args.idle} idle sessions (each got the greeting and sent nothing), KiB:")
        w("")
        rows = []
        for name, (before, during) in idles.items():
            b, h = before.get("VmRSS", 0), during.get("VmHWM", 0)
            rows.append([name, f"{b:,}", f"{h:,}", f"{(h - b) / args.idle:.1f}"])
        table(w, ["server", "VmRSS before", "VmHWM with the idle sessions", "per session"], rows)
    if memory:
        w("Peak RSS (VmHWM, KiB) of each server under load: the highest of its processes "
          "(one per round; the first also ran the calibration):")
        w("")
        rows = [[str(sessions), size] + [f"{m[n].get('VmHWM', 0):,}" for n in names]
                for (sessions, size), m in memory.items()]
        table(w, ["sessions", "size"] + names, rows)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hil", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--aiosmtpd-python", required=True)
    ap.add_argument("--smtp-source", default=shutil.which("smtp-source") or "/usr/sbin/smtp-source")
    ap.add_argument("--smtp-sink", default=shutil.which("smtp-sink") or "/usr/sbin/smtp-sink")
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, help="a fixed message count (no calibration)")
    ap.add_argument("--sessions", type=int, nargs="+", default=SESSIONS)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--idle", type=int, default=1000, help="idle sessions (0: skip)")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--out", help="also write the report (Markdown) here")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=HIL",
                    help="also run this hil binary as server NAME (e.g. an older build)")
    args = ap.parse_args()
    for key in ("hil", "scenario", "work", "aiosmtpd_python", "smtp_source", "smtp_sink"):
        setattr(args, key, os.path.abspath(getattr(args, key)))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.idle + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"bench: {need} file descriptors needed, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    for extra in args.extra:
        name, _, path = extra.partition("=")
        if not name or not path:
            sys.exit(f"bench: --extra {extra}: NAME=PATH")
        path = os.path.abspath(path)
        SERVERS.append((name, lambda n, a, w, p=path: Ours(n, a, w, hil=p)))
    os.makedirs(args.work, exist_ok=True)
    info = machine(args)
    started = time.monotonic()
    results, memory, idles = {}, {}, {}
    if not args.no_throughput:
        throughput(args, results, memory)
    if args.idle:
        idles = idle(args)
    text = report(args, info, results, memory, idles, time.monotonic() - started)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"bench: {e}")
