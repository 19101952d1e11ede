#!/usr/bin/env python3
"""Per-user accuracy of sysmon against ground truth, on real processes of this machine.

Run as root (it creates its users, smacc1 for the load and smobs as an unprivileged observer):

    cargo build --release --locked
    sudo python3 benches/accuracy.py target/release/sysmon [--secs 10] [--only SHAPE]

CPU shapes run a stream of short jobs (about 30 ms of CPU each, four at a time) as smacc1 for
`--secs` seconds. Every job, driver and intermediate process of smacc1 reports its own CPU time
(getrusage at its exit) to a file: that sum is the truth. sysmon runs beside it as
`--batch --json --interval 1`, as root (exit records) and as smobs (children's ticks), and its
per-user CPU (cores x interval, summed over the samples) is compared with the truth.

Memory shapes: a parent touching 300 MiB and forking 8 workers that read it (copy-on-write), and
4 processes with 100 MiB private each; the truth is the sum of `Pss:` from each process's
smaps_rollup, read by this script at the sample sysmon is compared at.

Bounded: each shape runs --secs plus about 5 s; nothing is left running.
"""

import argparse
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time

# The jobs run as other users: the system interpreter, not one under a home directory.
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

JOB = r"""
import os, resource, sys, time
target = float(sys.argv[1]) / 1000
start = time.process_time()
x = 0
while time.process_time() - start < target:
    x += 1
# Report as late as possible and skip the interpreter's teardown, which the report would miss.
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
ru = resource.getrusage(resource.RUSAGE_SELF)
os.write(fd, b"%d\n" % round((ru.ru_utime + ru.ru_stime) * 1e6))
os._exit(0)
"""

# Shapes: how the short jobs are started and reaped. Run as smacc1 unless "root-parent".
DRIVER = r"""
import os, resource, signal, subprocess, sys, time
shape, secs, truth, job, uid = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ms = "30"

def report():
    fd = os.open(truth, os.O_WRONLY | os.O_APPEND)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    os.write(fd, b"%d\n" % round((ru.ru_utime + ru.ru_stime) * 1e6))
    os.close(fd)

def job_cmd():
    return [sys.executable, "-S", job, ms, truth]

end = time.time() + secs
if shape in ("wait", "root-parent"):
    running = []
    while time.time() < end:
        while len(running) < 4:
            kw = {"user": uid} if shape == "root-parent" else {}
            running.append(subprocess.Popen(job_cmd(), **kw))
        running.pop(0).wait()
    for p in running:
        p.wait()
    if shape == "wait":
        report()
elif shape in ("init-orphans", "subreaper"):
    if shape == "subreaper":
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    live = 0
    while time.time() < end:
        pid = os.fork()
        if pid == 0:
            # The intermediate starts the job and leaves it to be adopted.
            if os.fork() == 0:
                os.execv(sys.executable, job_cmd())
            report()
            os._exit(0)
        os.waitpid(pid, 0)
        live += 1
        if shape == "subreaper":
            while live >= 4:
                os.wait()
                live -= 1
        else:
            time.sleep(0.008)
    if shape == "subreaper":
        while live > 0:
            os.wait()
            live -= 1
    report()
elif shape == "sigchld-ignored":
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while time.time() < end:
        for _ in range(4):
            subprocess.Popen(job_cmd())
        time.sleep(0.035)
    time.sleep(0.5)
    report()
"""

SHARED = r"""
import os, sys, time
mib = int(sys.argv[1]); workers = int(sys.argv[2]); shared = sys.argv[3] == "shared"
if shared:
    buf = bytearray(os.urandom(1 << 20) * mib)
    for _ in range(workers):
        if os.fork() == 0:
            s = 0
            for i in range(0, len(buf), 4096):
                s += buf[i]
            time.sleep(3600)
else:
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    buf = bytearray(os.urandom(1 << 20) * mib)
time.sleep(3600)
"""


def ensure_user(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-K", "UID_MIN=1000", name], check=True)
        return pwd.getpwnam(name).pw_uid


def start_sysmon(binary, observer_uid, out):
    kw = {"user": observer_uid} if observer_uid else {}
    return subprocess.Popen([binary, "--batch", "--json", "--interval", "1"], stdout=out, stderr=subprocess.DEVNULL, **kw)


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def wait_lines(path, n, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(lines(path)) >= n:
            return
        time.sleep(0.1)
    raise SystemExit(f"sysmon printed fewer than {n} lines in {timeout} s")


def user_cpu_secs(docs, name):
    total = exited = 0.0
    for d in docs:
        for u in d["users"]:
            if u["name"] == name:
                total += u["cpu_cores"] * d["interval_secs"]
                exited += u.get("exited_cpu_cores", 0.0) * d["interval_secs"]
    return total, exited


def unattributed_secs(docs):
    return sum(d["accounting"]["unattributed_cores"] * d["interval_secs"] for d in docs)


def cpu_shape(args, shape, mode, uid, obs_uid, workdir):
    truth = os.path.join(workdir, f"truth-{shape}-{mode}")
    job = os.path.join(workdir, "job.py")
    driver = os.path.join(workdir, "driver.py")
    out_path = os.path.join(workdir, f"sysmon-{shape}-{mode}.jsonl")
    open(truth, "w").close()
    os.chmod(truth, 0o666)
    with open(out_path, "w") as out:
        mon = start_sysmon(args.binary, obs_uid if mode == "unprivileged" else None, out)
        try:
            wait_lines(out_path, 1, timeout=60)  # a loaded machine can take a while to start it
            kw = {} if shape == "root-parent" else {"user": uid}
            subprocess.run([PY, "-S", driver, shape, str(args.secs), truth, job, str(uid)], check=True, timeout=args.secs + 30, **kw)
            n = len(lines(out_path))
            wait_lines(out_path, n + 2)
        finally:
            mon.send_signal(signal.SIGTERM)
            mon.wait(timeout=10)
    docs = lines(out_path)
    with open(truth) as f:
        true_secs = sum(int(l) for l in f if l.strip()) / 1e6
    seen, exited = user_cpu_secs(docs, "smacc1")
    root, _ = user_cpu_secs(docs, "root")
    source = docs[-1]["accounting"]["exited_source"] if docs else "?"
    pct = seen / true_secs * 100 if true_secs else 0.0
    print(f"{shape:<16} {mode:<12} {source:<12} truth {true_secs:7.2f} s  sysmon {seen:7.2f} s "
          f"({pct:5.1f} %, exited {exited:6.2f} s)  unattributed {unattributed_secs(docs):6.2f} s  root {root:6.2f} s")
    return pct


def pss_sum(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def memory_shape(args, shape, uid, workdir):
    prog = os.path.join(workdir, "shared.py")
    mib, workers = (300, 8) if shape == "forked-workers" else (100, 4)
    parent = subprocess.Popen([PY, "-S", prog, str(mib), str(workers), "shared" if shape == "forked-workers" else "private"], user=uid)
    out_path = os.path.join(workdir, f"sysmon-{shape}.jsonl")
    try:
        time.sleep(8)  # allocated and read by every worker
        with open(out_path, "w") as out:
            mon = start_sysmon(args.binary, None, out)
            try:
                # PSS is measured over a few refreshes (512 MiB of page tables each).
                wait_lines(out_path, 8, timeout=30)
            finally:
                mon.send_signal(signal.SIGTERM)
                mon.wait(timeout=10)
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid]
        truth = pss_sum(pids)
        last = lines(out_path)[-1]
        u = next(u for u in last["users"] if u["name"] == "smacc1")
        pct = u["memory_bytes"] / truth * 100
        print(f"{shape:<16} {'root':<12} {u['memory_source']:<12} truth (PSS sum) {truth / 2**20:8.1f} MiB  "
              f"sysmon {u['memory_bytes'] / 2**20:8.1f} MiB ({pct:5.1f} %)  RSS sum {u['rss_bytes'] / 2**20:8.1f} MiB "
              f"({u['rss_bytes'] / truth:4.1f}x)")
        return pct
    finally:
        subprocess.run(["pkill", "-KILL", "-u", "smacc1"], check=False)
        parent.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--only")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it creates users and reads every process's smaps_rollup")
    args.binary = os.path.abspath(args.binary)
    uid = ensure_user("smacc1")
    obs = ensure_user("smobs")
    with tempfile.TemporaryDirectory(prefix="sysmon-acc-") as workdir:
        os.chmod(workdir, 0o755)
        for name, text in (("job.py", JOB), ("driver.py", DRIVER), ("shared.py", SHARED)):
            with open(os.path.join(workdir, name), "w") as f:
                f.write(text)
        shapes = ["wait", "root-parent", "init-orphans", "subreaper", "sigchld-ignored"]
        for shape in shapes:
            for mode in ("root", "unprivileged"):
                if args.only in (None, shape):
                    cpu_shape(args, shape, mode, uid, obs, workdir)
        for shape in ("forked-workers", "private"):
            if args.only in (None, shape):
                memory_shape(args, shape, uid, workdir)


if __name__ == "__main__":
    main()
