#!/usr/bin/env python3
"""Benchmark relays (issue 7): fan-out latency from one `ipfm station` to 8 `ipfm relay`
processes, and what following one station costs a relay (CPU, peak RSS).

One fresh `ipfm station` (2-s segments, window 6, the generated library of bench/station.py)
and 8 fresh `ipfm relay` processes, each on its own repo, loopback ports only, no public
bootstrap peers (run it inside scripts/in-loopback-netns.sh, as `make bench` does):

  station <- r1 <- r5      r1-r4 are started from the station's multiaddr; r5-r8 from
          <- r2 <- r6      their upstream relay's multiaddr only, follow the station by
          <- r3 <- r7      name and run with --block-peer <station>, so they never connect
          <- r4 <- r8      to it: every root reaches them through a relay (checked at the
                           end: their /api/v1/relay says station_connected false)

Once every relay holds a root (gossipsub meshes form on heartbeats), SECONDS of wall time:
  fan-out latency: for every root the station announced in the window and every relay, the
    relay's "root held whole" log time (every block of the root fetched over bitswap and
    CID-verified in its store) minus the station's "announced" log time (the signed
    announcement handed to gossipsub), both JSON log timestamps on this machine's clock.
    Nearest-rank p50/p99, overall and by hop (1: from the station, 2: through a relay);
    compared to the segment duration (a relay must keep up with the stream).
  relay cost: CPU seconds per minute of wall time (utime + stime over the window, from
    /proc/PID/stat) and peak RSS (VmHWM, start-up included) of each relay process.
Then SIGTERM to all: each must exit 0.

Usage: bench/fanout.py IPFM_BINARY [SECONDS] [--write docs/benchmarks.md]
With --write, the section between the `<!-- bench:fanout -->` markers is replaced.
"""
import calendar, json, os, queue, re, statistics, subprocess, sys, tempfile, threading
import time, urllib.request

import common
import station  # its report helpers (percentile, met, tree_state, fmt_load)
from benchdoc import parse_args, write_section

ARGS, WRITE = parse_args(sys.argv[1:])
if not ARGS:
    sys.exit(__doc__)
IPFM = ARGS[0]
SECONDS = int(ARGS[1]) if len(ARGS) > 1 else 60

SEGMENT_SECONDS = 2
# Relay i (1-based) starts from UPSTREAM[i - 1]: 0 is the station, n is relay n (and then
# blocks the station).
UPSTREAM = [0, 0, 0, 0, 1, 2, 3, 4]
START_TIMEOUT, WARMUP_TIMEOUT, CATCHUP_TIMEOUT, HTTP_TIMEOUT = 120, 120, 30, 10


def hop(index):
    """How many relays a root passes through to reach relay `index` (1-based), itself included."""
    upstream = UPSTREAM[index - 1]
    return 1 if upstream == 0 else 1 + hop(upstream)


class Process(common.Child):
    """An `ipfm` child: stdout lines collected until `ready` is printed, stderr to `log`."""

    def __init__(self, args, log, log_filter, ready):
        env = {k: v for k, v in os.environ.items() if not k.startswith("IPFM_")}
        env.update(RUST_LOG=log_filter, NO_COLOR="1")
        self.log, self.what = log, f"`ipfm {args[2]}`"
        self.proc = subprocess.Popen([IPFM, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=open(log, "w"), env=env,
                                     text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout],
                         daemon=True).start()
        self.printed = []
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.printed and self.printed[-1].startswith(ready)):
            try:
                self.printed.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"`ipfm {args[2]}` never printed {ready!r}: {self.log_tail()}")

    def value(self, label):
        return next(l.split(":", 1)[1].strip() for l in self.printed
                    if l.startswith(label + ":"))

    def tcp_addr(self):
        return next(l.split(":", 1)[1].strip() for l in self.printed
                    if l.startswith("p2p:") and "/ip4/127.0.0.1/tcp/" in l)

    def http_addr(self, label):
        return re.match(r"http://([^/]+)/", self.value(label)).group(1)

    def events(self, message):
        """{sequence: (root, unix time)} of the JSON log lines with this message."""
        out = {}
        for line in open(self.log):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            fields = event.get("fields", {})
            if fields.get("message") == message and "sequence" in fields:
                out[fields["sequence"]] = (fields.get("root"), parse_time(event["timestamp"]))
        return out


def parse_time(text):
    """RFC 3339 UTC (tracing's JSON timestamps) to unix seconds, microseconds kept."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(m.group(2) or 0)


def relay_status(relay):
    url = f"http://{relay.http_addr('status')}/api/v1/relay"
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
        return json.load(r)


def wait_until(what, timeout, done):
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout} s")
        time.sleep(0.25)


def run(tmp, music):
    common = ["--listen", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0",
              "--no-default-bootstrap", "--log-format", "json"]
    procs = []
    try:
        st = Process(["--repo", os.path.join(tmp, "station"), "station", "--music", music,
                      "--segment-seconds", str(SEGMENT_SECONDS), "--window", "6", *common],
                     os.path.join(tmp, "station.log"),
                     "warn,ipfm_node::station::announce=debug", "dashboard:")
        procs.append(st)
        name, relays = st.value("IPNS name"), []
        for i, upstream in enumerate(UPSTREAM, 1):
            target = st.tcp_addr() if upstream == 0 else name
            extra = [] if upstream == 0 else ["--bootstrap", relays[upstream - 1].tcp_addr(),
                                              "--block-peer", name]
            relay = Process(["--repo", os.path.join(tmp, f"relay-{i}"), "relay", target, *common,
                             "--retention-secs", "120", *extra],
                            os.path.join(tmp, f"relay-{i}.log"), "warn,ipfm_node::follow=debug",
                            "status:")
            relays.append(relay)
            procs.append(relay)
        wait_until("every relay following", WARMUP_TIMEOUT,
                   lambda: all(relay_status(r)["accepted"] >= 1 for r in relays))
        start_seq = max(st.events("announced"))
        cpu0 = [r.cpu_seconds() for r in relays]
        time.sleep(SECONDS)
        cpu1 = [r.cpu_seconds() for r in relays]
        end_seq = max(st.events("announced"))
        wait_until("every relay caught up", CATCHUP_TIMEOUT,
                   lambda: all((relay_status(r)["last_sequence"] or 0) >= end_seq
                               for r in relays))
        peaks = [r.status()["VmHWM"] for r in relays]
        # The enforced topology: exactly the relays started from the station reach it.
        reach = [relay_status(r)["station_connected"] for r in relays]
        wrong = [i for i, (up, r) in enumerate(zip(UPSTREAM, reach), 1) if r != (up == 0)]
        if wrong:
            raise RuntimeError(f"topology not held (station_connected of r{wrong}): {reach}")
        direct = json.load(urllib.request.urlopen(
            f"http://{st.http_addr('api')}/api/v1/status", timeout=HTTP_TIMEOUT))["peers_connected"]
        announced = st.events("announced")
        lags, missing = {}, []
        for i, relay in enumerate(relays, 1):
            held = relay.events("root held whole")
            for seq in range(start_seq + 1, end_seq + 1):
                if seq not in announced:
                    continue
                root, at = announced[seq]
                if seq not in held or held[seq][0] != root:
                    missing.append((i, seq))
                    continue
                lags.setdefault(i, []).append(max(0.0, held[seq][1] - at))
        for p in reversed(procs):
            p.stop()
        return {"lags": lags, "missing": missing, "roots": end_seq - start_seq,
                "cpu": [(b - a) / SECONDS * 60 for a, b in zip(cpu0, cpu1)],
                "peaks": peaks, "direct": direct}
    finally:
        for p in procs:
            p.kill()


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} × {model}, {os.uname().sysname} {os.uname().release}"


def pct(q, values):
    return station.percentile(q, values)


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def main():
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(IPFM)))
    state = f"{station.tree_state()} (binary built {built})"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        music = os.path.join(tmp, "music")
        common.make_library(music)
        result = run(tmp, music)
    load_after = os.getloadavg()
    if result["missing"]:
        raise RuntimeError(f"roots not held by a relay (relay, sequence): {result['missing']}")
    lags = result["lags"]
    every = [lag for values in lags.values() for lag in values]
    by_hop = {}
    for i, values in lags.items():
        by_hop.setdefault(hop(i), []).extend(values)
    seg = float(SEGMENT_SECONDS)
    rows = [("all 8 relays", every)] + [
        (f"hop {h} ({', '.join(f'r{i}' for i in lags if hop(i) == h)})", v)
        for h, v in sorted(by_hop.items())]
    table = ["| relays | arrivals | p50 | p99 | p99 / segment | max |", "|---|---|---|---|---|---|"]
    for label, values in rows:
        table.append(f"| {label} | {len(values)} | {ms(pct(0.5, values))} | "
                     f"{ms(pct(0.99, values))} | {pct(0.99, values) / seg:.2f} | "
                     f"{ms(max(values))} |")
    cpu, peaks = result["cpu"], result["peaks"]
    cost = ["| relay | hop | CPU s per minute | CPU share of one core | peak RSS (VmHWM) |",
            "|---|---|---|---|---|"]
    for i, (c, p) in enumerate(zip(cpu, peaks), 1):
        cost.append(f"| r{i} | {hop(i)} | {c:.2f} | {c / 60:.1%} | {p / 1e6:.0f} MB |")
    cost.append(f"| median | – | {statistics.median(cpu):.2f} | {statistics.median(cpu) / 60:.1%} "
                f"| {statistics.median(peaks) / 1e6:.0f} MB |")
    p99 = pct(0.99, every)
    busy = ("; the machine was busy with other work during the run"
            if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) else "")
    near = [i for i, up in enumerate(UPSTREAM, 1) if up == 0]
    far = [i for i, up in enumerate(UPSTREAM, 1) if up != 0]
    names = lambda idx: ", ".join(f"r{i}" for i in idx)  # noqa: E731
    starts = "; ".join(f"r{i} from r{up}'s" for i, up in enumerate(UPSTREAM, 1) if up != 0)
    text = f"""## Relays: fan-out latency to 8 relays, relay CPU and memory per station followed

Command: `make bench` (runs `scripts/in-loopback-netns.sh .venv/bin/python bench/fanout.py target/release/ipfm {SECONDS}`). Measured: {state}. One `ipfm station` (2-s segments, window 6, the generated library of the station benchmark) and 8 `ipfm relay` processes, each on a fresh repo, loopback only, no public bootstrap peers, started in this topology: {names(near)} from the station's multiaddr; {starts}, each following the station by name with `--block-peer <station>`, so it never connects to the station and every root reaches it through a relay. {result['roots']} roots announced during the {SECONDS}-s window, every one held whole by every relay.

**Fan-out latency**: relay's "root held whole" log time (all blocks of the new root fetched over bitswap and CID-verified in its store, the root then served by its gateway) minus the station's "announced" log time (signed announcement handed to gossipsub); JSON log timestamps of the processes, one machine clock. Nearest-rank percentiles. Goal (issue 7): p99 < 1 s; the live bound is one segment ({SEGMENT_SECONDS} s).

{chr(10).join(table)}

Goal p99 < 1 s: {station.met(p99 < 1.0)} (p99 {ms(p99)}, {p99 / seg:.2f} of a segment). Reference: the segment duration (a relay must keep up with the stream): p99 is {p99 / seg:.2f} of it. The topology is enforced and was checked at the end: {names(far)} reported no connection to the station (`station_connected` false in `/api/v1/relay`), {names(near)} a direct one; the station had {result['direct']} direct peers. Hop 1 is the station → relay gossipsub delivery plus the bitswap fetch of the root's new blocks; hop 2 adds a relay in between, which forwards an announcement only once it holds (and has verified) the whole root, so the root's blocks are fetched twice in a row.

**Relay cost per station followed** (same window): CPU = utime + stime of each relay process over {SECONDS} s of wall time, from `/proc/PID/stat` (every relay verifies, fetches, pins, provides and forwards each root, and serves blocks to the peers that ask); peak RSS = `VmHWM` at the end (start-up included). Relays log at debug level for the follow module (one line per root) to time arrivals.

{chr(10).join(cost)}

Machine: {machine()}. Load average (1/5/15 min) {station.fmt_load(load_before)} before, {station.fmt_load(load_after)} after: the 9 processes share two cores with each other (and with whatever else runs), so the tail includes scheduling delays{busy}."""
    print(text)
    if WRITE:
        write_section(WRITE, "fanout", text)


if __name__ == "__main__":
    main()
