#!/usr/bin/env python3
"""Regenerate link/hot-text.ld: the functions a refresh runs, laid out together.

A monitor's resident memory is mostly its own code pages, and the kernel maps code in 64 KiB
blocks around each page fault (fault-around), so what counts is how many blocks the code that
runs is spread over, not how much of it there is. Left to the linker, the few hundred functions
a refresh needs are scattered over almost all of the 4 MB of text. This script records which
functions run (valgrind's callgrind, instruction level) in the terminal UI and in --batch, and
writes a linker script that puts them at the start of .text: common code, then TUI-only, then
batch-only. (The rest of .text follows them in the same output section, so tools that look for
code in `.text` only, such as valgrind, still find all of it.)

The patterns leave out the parts of symbol names that change from build to build (legacy hashes,
v0 crate disambiguators and back-references), so the script keeps working across toolchain and
dependency updates; a function that is new or renamed just stays in the cold part until the
script is regenerated.

usage: python3 link/hot-text.py target/release/sysmon > link/hot-text.ld
needs: valgrind, tmux, nm. Run it on a machine with a few thousand processes if you can (the
shape of the work does not depend on the count, but every branch of the scan should be taken).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right

TUI_SECS = 40  # under valgrind a refresh is ~50x slower; this covers startup and several ticks
POS = re.compile(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s")


def executed_addresses(callgrind_out, binary):
    """File-relative addresses of the instructions of `binary` that ran."""
    names, obj, last, out = {}, None, 0, set()
    with open(callgrind_out) as f:
        for line in f:
            m = re.match(r"c?ob=\((\d+)\)\s*(.*)", line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2).strip()
                if line.startswith("ob="):
                    obj = m.group(1)
                continue
            m = POS.match(line)
            if not m:
                continue
            tok = m.group(1)
            if tok.startswith("0x"):
                last = int(tok, 16)
            elif tok != "*":
                last += int(tok)
            if os.path.realpath(names.get(obj, "")) == binary:
                out.add(last)
    return out


def functions(binary):
    syms = []
    nm = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True)
    for line in nm.stdout.splitlines():
        p = line.split()
        if len(p) >= 4 and p[2] in "tTwW":
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
    syms.sort()
    return syms


def hot_functions(addrs, syms):
    starts = [s[0] for s in syms]
    hot = {}
    for a in sorted(addrs):
        i = bisect_right(starts, a) - 1
        if i >= 0 and syms[i][0] <= a < syms[i][0] + syms[i][1]:
            hot.setdefault(syms[i][2], None)
    return list(hot)


def pattern(name):
    """A glob for the function's input section that survives rebuilds."""
    if name.startswith("_ZN"):
        name = re.sub(r"17h[0-9a-f]{16}E", "17h*E", name)
    elif name.startswith("_R"):
        name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
        name = re.sub(r"B[0-9A-Za-z]*_", "B*_", name)
    name = re.sub(r"\.llvm\.\d+$", ".llvm.*", name)
    # LLVM numbers local symbols that share a name (`.1155`): the number changes between builds.
    name = re.sub(r"\.\d+$", ".*", name)
    # `.text.NAME` and, for #[cold] functions, `.text.unlikely.NAME`.
    return ".text.*" + name


def callgrind(cmd, out, tui):
    vg = ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}"]
    if not tui:
        subprocess.run(vg + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return
    sock = f"hot-text-{os.getpid()}"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    line = " ".join(vg + cmd)
    subprocess.run(tmux + ["new-session", "-d", "-x", "200", "-y", "50", line], check=True)
    try:
        time.sleep(TUI_SECS)
        subprocess.run(tmux + ["send-keys", "q"], check=True)
        for _ in range(60):
            if os.path.exists(out):
                break
            time.sleep(1)
        time.sleep(2)
    finally:
        subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    syms = functions(binary)
    with tempfile.TemporaryDirectory() as tmp:
        tui_out, batch_out = f"{tmp}/tui.out", f"{tmp}/batch.out"
        callgrind([binary, "--interval", "1"], tui_out, tui=True)
        callgrind([binary, "--batch", "--interval", "1", "--count", "3"], batch_out, tui=False)
        tui = hot_functions(executed_addresses(tui_out, binary), syms)
        batch = hot_functions(executed_addresses(batch_out, binary), syms)

    def patterns(names):
        seen, out = set(), []
        for n in names:
            if n == "_start":  # crt1.o's, in plain .text
                continue
            p = pattern(n)
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out

    pt, pb = patterns(tui), patterns(batch)
    groups = [
        ("run by both the terminal UI and --batch", [p for p in pt if p in set(pb)]),
        ("run by the terminal UI only", [p for p in pt if p not in set(pb)]),
        ("run by --batch only", [p for p in pb if p not in set(pt)]),
    ]
    print("/* Generated by link/hot-text.py: the functions a refresh runs, first and together, so")
    print("   that their code pages are few (see the script). Passed to the linker for release")
    print("   builds of the binary by build.rs (lld only). Regenerate after large code changes. */")
    print("SECTIONS\n{\n  .text : {")
    for title, ps in groups:
        print(f"    /* {title} */\n    *(")
        for p in ps:
            print(f"      {p}")
        print("    )")
    print("  }\n}\nINSERT BEFORE .init;")


if __name__ == "__main__":
    main()
