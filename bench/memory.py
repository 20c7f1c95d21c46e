#!/usr/bin/env python3
"""Memory of `hil run` under what a device or a second run can do to it (BENCHMARKS.md
section 3, issue 18): each figure against a baseline measured in the same command.

1. Console flood: one case (`delivery/base`) through the router-style test device
   (mfp-testdev), which prints --flood-mib MiB on its console when the job starts (log
   lines its profile reads as events, then random bytes); baseline: the same case
   without a flood. Peak RSS of the `hil` process (wait4's ru_maxrss).
2. Two exhaustive runs at once on one host (each with its own responder port and
   fake servers); baseline: one exhaustive run alone. Peak RSS of each `hil` process,
   of the process tree (hil and its simulated devices, VmRSS summed every 100 ms), and
   wall time.

    bench/memory.py --hil target/release/hil --testdev target/release/mfp-testdev
        [--flood-mib 200] [--skip-flood] [--skip-exhaustive]

Prints a Markdown report; exit 1 if a run did not pass.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_rss_kib(pid):
    """VmRSS of pid and all its descendants, KiB."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rfind(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Run:
    """`hil ARGS`, its output in a file, sampled for the tree's RSS."""

    def __init__(self, hil, args, name):
        self.out = tempfile.NamedTemporaryFile(prefix=f"hil-mem-{name}-", delete=False)
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([hil] + args, cwd=ROOT, stdout=self.out,
                                  stderr=subprocess.STDOUT)
        self.tree_peak = 0
        self.done = False
        self.sampler = threading.Thread(target=self.sample, daemon=True)
        self.sampler.start()

    def sample(self):
        while not self.done:
            self.tree_peak = max(self.tree_peak, tree_rss_kib(self.p.pid))
            time.sleep(0.1)

    def wait(self):
        _, status, usage = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.done = True
        self.sampler.join()
        self.secs = time.monotonic() - self.t0
        self.peak = usage.ru_maxrss
        with open(self.out.name, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        os.unlink(self.out.name)
        self.last = text.rstrip("\n").rsplit("\n", 1)[-1]
        return self


def router_profile(extra, job_ms=None):
    with open(os.path.join(ROOT, "fixtures/devices/router.toml")) as f:
        text = f.read()
    plain = 'sim_args = ["--style", "router"]'
    assert plain in text, "router.toml's sim_args changed"
    text = text.replace(plain, 'sim_args = ["--style", "router"' + "".join(
        f', "{a}"' for a in extra) + "]", 1)
    if job_ms:
        text = text.replace("job_ms = 400000", f"job_ms = {job_ms}", 1)
    f = tempfile.NamedTemporaryFile("w", prefix="hil-mem-", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return f.name


def mib(kib):
    return f"{kib / 1024:.1f}"


def flood(a, rows):
    base_profile = router_profile([])
    common = ["run", "--device", f"sim:{a.testdev}", "--case", "delivery/base"]
    with tempfile.TemporaryDirectory() as d:
        base = Run(a.hil, common + ["--profile", base_profile, "--report", f"{d}/base"],
                   "base").wait()
        rows.append(("no flood (baseline)", base, 1.0, ""))
        for kind in ("events", "binary"):
            p = router_profile(["--flood-at-job", "1", "--flood-kind", kind,
                                "--flood-bytes", str(a.flood_mib << 20)], job_ms=10_000_000)
            r = Run(a.hil, common + ["--profile", p, "--report", f"{d}/{kind}"], kind).wait()
            os.unlink(p)
            biggest = max(os.path.getsize(os.path.join(d, kind, n))
                          for n in os.listdir(os.path.join(d, kind)))
            rows.append((f"{a.flood_mib} MiB of {kind}", r, r.peak / max(base.peak, 1),
                         f"{biggest / 1048576:.2f}"))
    os.unlink(base_profile)


def exhaustive(a, rows):
    with tempfile.TemporaryDirectory() as d:
        one = Run(a.hil, ["run", "--report", f"{d}/alone"], "alone").wait()
        rows.append(("one run alone (baseline)", one))
        two = [Run(a.hil, ["run", "--report", f"{d}/at-once-{i}"], f"two-{i}") for i in (1, 2)]
        for i, r in enumerate(two, 1):
            r.wait()
            rows.append((f"run {i} of two at once", r))
        return one, two


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hil", default=os.path.join(ROOT, "target/release/hil"))
    ap.add_argument("--testdev", default=os.path.join(ROOT, "target/release/mfp-testdev"))
    ap.add_argument("--flood-mib", type=int, default=200)
    ap.add_argument("--skip-flood", action="store_true")
    ap.add_argument("--skip-exhaustive", action="store_true")
    a = ap.parse_args()
    ok = True
    print(f"# hil memory ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)\n")
    if not a.skip_flood:
        rows = []
        flood(a, rows)
        print("## Console flood (one case, router-style test device)\n")
        print("| console | result | hil peak RSS MiB | x baseline | largest report file MiB | s |")
        print("|---|---|---:|---:|---:|---:|")
        for name, r, ratio, biggest in rows:
            ok &= r.p.returncode == 0
            print(f"| {name} | {r.last} | {mib(r.peak)} | {ratio:.2f} | {biggest} | {r.secs:.1f} |")
        print()
    if not a.skip_exhaustive:
        rows = []
        one, two = exhaustive(a, rows)
        print("## Exhaustive runs: one alone, then two at once\n")
        print("| run | result | hil peak RSS MiB | tree peak RSS MiB | s |")
        print("|---|---|---:|---:|---:|")
        for name, r in rows:
            ok &= r.p.returncode == 0
            print(f"| {name} | {r.last} | {mib(r.peak)} | {mib(r.tree_peak)} | {r.secs:.1f} |")
        worst = max(r.peak for r in two)
        slowest = max(r.secs for r in two)
        print(f"\nTwo at once against one alone: hil peak RSS x{worst / max(one.peak, 1):.2f} "
              f"per run, wall time x{slowest / max(one.secs, 0.001):.2f} "
              f"(both runs done in the time of {slowest / max(one.secs, 0.001):.2f} single runs)\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
