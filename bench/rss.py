#!/usr/bin/env python3
"""Probe the whole `ipfm station`'s memory alone (issue 5's RSS goal: ≤ 64 MB), without the
rest of bench/station.py (publish latency; its gateway test only with --gateway): quick
enough to re-run after every change.

For each binary given: a fresh `ipfm station` child on a fresh repo (same generated library,
flags and environment as bench/station.py: loopback ports, no bootstrap peers; run it inside
scripts/in-loopback-netns.sh), sampled once a second for SECONDS after it printed its player
URL: VmHWM (peak RSS, start-up included), RssAnon and RssFile from /proc/PID/status. At the
end: the binary's own resident code (smaps), the number of shared libraries mapped, and the
largest file-backed mappings. Then SIGTERM: the station must exit 0.

Each RUN is an ipfm binary, optionally followed by environment settings for that station
only, comma-separated: `target/release/ipfm,IPFM_SLED_CACHE_BYTES=8388608` (station.py
otherwise passes no IPFM_* variable through). With --gateway, after the samples each station,
still running, also serves bench/station.py's gateway test: wrk on one segment from its
gateway vs nginx serving the same bytes (req/s ratio; issue 5's goal ≥ 0.5). That load comes
after the RSS figures are taken, so it does not change them.

Usage: bench/rss.py SECONDS RUN [RUN ...] [--gateway] [--write docs/benchmarks.md]
With --write, the section between the `<!-- bench:station-rss -->` markers is replaced.
"""
import os, re, sys, tempfile, time

import common
import station
from benchdoc import parse_args, write_section

ARGS, WRITE = parse_args(sys.argv[1:])
GATEWAY = "--gateway" in ARGS
ARGS = [a for a in ARGS if a != "--gateway"]
if len(ARGS) < 2 or not ARGS[0].isdigit():
    sys.exit(__doc__)
SECONDS, RUN_SPECS = int(ARGS[0]), ARGS[1:]


def parse_run(spec):
    """(binary, {VAR: VALUE}) from `BINARY[,VAR=VALUE...]`."""
    binary, *settings = spec.split(",")
    env = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            sys.exit(f"bad setting {setting!r} in {spec!r}: expected VAR=VALUE\n\n{__doc__}")
        env[name] = value
    return binary, env


RUNS = [parse_run(spec) for spec in RUN_SPECS]

GOAL_RSS_MB = station.GOAL_RSS_MB
TOP_MAPPINGS = 6
# RssAnon is reported at these intervals too, to tell a steady state from growth (caches
# filling, segments piling up).
SERIES_EVERY = 30


def probe(binary, env, tmp, music, index):
    repo = os.path.join(tmp, f"repo-{index}")
    proc = common.Station(binary, repo, music, os.path.join(tmp, f"station-{index}.log"),
                          env_extra=env)
    served = None
    try:
        peak_anon, samples, series = 0, 0, []
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{binary} exited early: {proc.log_tail()}")
            now = proc.status()
            peak_anon = max(peak_anon, now["RssAnon"])
            if samples % SERIES_EVERY == 0:
                series.append((samples, now["RssAnon"], now["VmHWM"]))
            samples += 1
            time.sleep(1)
        end = proc.status()
        maps = common.file_mappings(proc.proc.pid)
        segments = common.metric_sum(proc.metrics(), "ipfm_segments_encoded")
        if GATEWAY:
            served = station.gateway_vs_nginx(proc, os.path.join(tmp, f"nginx-{index}"))
        proc.stop()
    finally:
        proc.kill()
    own = maps.get(os.path.realpath(binary), 0)
    libs = [p for p in maps if re.search(r"\.so(\.\d+)*$", p)]
    top = sorted(((b, p) for p, b in maps.items() if p != os.path.realpath(binary)),
                 reverse=True)[:TOP_MAPPINGS]
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(binary)))
    label = " ".join([binary, *(f"{k}={v}" for k, v in env.items())])
    return {"binary": binary, "label": label, "served": served, "built": built, "hwm": end["VmHWM"], "anon_peak": peak_anon,
            "anon": end["RssAnon"], "file": end["RssFile"], "own": own, "libs": len(libs),
            "top": top, "segments": segments, "samples": samples, "series": series}


def mb(n):
    return f"{n / 1e6:.0f} MB"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        music = os.path.join(tmp, "music")
        common.make_library(music)
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody and must reach their files
        runs = [probe(b, env, tmp, music, i) for i, (b, env) in enumerate(RUNS)]

    lines = []
    out = lines.append
    out("## Station: peak RSS alone\n")
    out(f"Command: `scripts/in-loopback-netns.sh .venv/bin/python bench/rss.py {SECONDS} "
        f"{' '.join(RUN_SPECS)}{' --gateway' if GATEWAY else ''}` (`make bench` runs it on target/release/ipfm). Measured: "
        f"{station.tree_state()}. Each binary: a fresh `ipfm station` on a fresh repo, the same "
        f"flags and generated library as the station benchmark above, sampled every second for "
        f"{SECONDS} s after it printed its player URL (start-up included: the first track is "
        "decoded and its loudness measured before it plays). Peak RSS = `VmHWM` at the end; "
        "anon = `RssAnon` (its peak over the samples / at the end); file = `RssFile` at the "
        "end, of which own code = the ipfm binary's resident pages (smaps); libs = shared "
        "libraries mapped.\n")
    out("| binary (built) | peak RSS | anon peak / end | file | own code | libs | segments "
        f"| goal ≤ {GOAL_RSS_MB} MB met? |")
    out("|---|---|---|---|---|---|---|---|")
    for r in runs:
        out(f"| `{r['label']}` ({r['built']}) | **{mb(r['hwm'])}** ({r['hwm'] / 2**20:.0f} MiB) "
            f"| {mb(r['anon_peak'])} / {mb(r['anon'])} | {mb(r['file'])} | {mb(r['own'])} "
            f"| {r['libs']} | {r['segments']:.0f} | {station.met(r['hwm'] / 1e6 <= GOAL_RSS_MB)} |")
    out("")
    if GATEWAY:
        out(f"Gateway vs nginx, each station still running after its samples (bench/station.py's "
            f"test: `wrk -t{station.WRK_THREADS} -c{station.WRK_CONNECTIONS} "
            f"-d{station.WRK_SECONDS}s`, {station.WRK_ROUNDS} alternating rounds, median):\n")
        out(f"| run | segment | ipfm req/s (rounds) | nginx req/s (rounds) | ratio "
            f"| goal ≥ {station.GOAL_RATIO} met? |")
        out("|---|---|---|---|---|---|")
        for r in runs:
            s = r["served"]
            ratio = s["ipfm"] / s["nginx"]
            rounds = lambda xs: ", ".join(f"{x:.0f}" for x in xs)
            out(f"| `{r['label']}` | {s['bytes'] / 1024:.0f} KiB | {s['ipfm']:.0f} "
                f"({rounds(s['ipfm_all'])}) | {s['nginx']:.0f} ({rounds(s['nginx_all'])}) "
                f"| {ratio:.2f} | {station.met(ratio >= station.GOAL_RATIO)} |")
        out("")
    for r in runs:
        series = ", ".join(f"{t} s: {anon / 1e6:.0f}/{hwm / 1e6:.0f}" for t, anon, hwm in r["series"])
        top = ", ".join(f"{os.path.basename(p)} {b / 1e6:.1f}" for b, p in r["top"])
        out(f"`{r['label']}`: anon/peak RSS over time (MB) {series}; largest file-backed "
            f"mappings at the end (MB): {top}.")
    text = "\n".join(lines).rstrip()
    print(text)
    if WRITE:
        write_section(WRITE, "station-rss", text)


if __name__ == "__main__":
    main()
