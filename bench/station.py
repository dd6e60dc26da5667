#!/usr/bin/env python3
"""Benchmark the whole `ipfm station` (issue 5): publish latency, realtime CPU and memory, and
gateway throughput against Debian's nginx serving the same segment in the same run.

Two station runs, each a fresh `ipfm station` child process on a fresh repository, with a
generated library (two 4-minute 44.1 kHz stereo FLAC tracks), loopback ports only and no
bootstrap peers (run it inside scripts/in-loopback-netns.sh, as `make bench` does):

  run 1  default settings (6-s segments, window 20), REALTIME_SECONDS of wall time after the
         station printed its player URL:
         (b) CPU share of one core = (utime + stime) of the process over that window, from
             /proc/PID/stat; peak RSS = VmHWM from /proc/PID/status at the end of the window
             (start-up included, the gateway idle: no listeners).
         (c) then, the station still running: `wrk` GETs one segment (`/ipfs/<cid>` of the
             newest midfi segment) from the station's gateway, and the same bytes as a static
             file from nginx (a generated config, 127.0.0.1 on a free port, a temp dir, run as
             `nobody` when we are root); alternating rounds, median req/s of each.
         Then SIGTERM: the station must exit 0.
  run 2  2-s segments (the shortest allowed, for more samples) for LATENCY_SECONDS:
         (a) segment ready -> new root served, two ways:
             inside: the station's own `ipfm_publish_latency_seconds` histogram (/metrics):
               from the first rendition's segment of a sequence stored to the end of the
               publish, which persists the station state (fsync'd) after the record went
               into the gateway's name table: an upper bound. p50/p99 interpolated within
               the power-of-two buckets as Prometheus' histogram_quantile() does.
             outside: a client GETs `/ipns/<name>?format=ipns-record` every 5 ms; for each
               new record, the time its response arrived minus the record's publish time
               (its EOL minus the validity; the station stamps it when the whole segment set
               is in and the publish starts): complete segment set -> served, with the poll
               interval as resolution (an upper bound too).

Usage: bench/station.py IPFM_BINARY [REALTIME_SECONDS] [--write docs/benchmarks.md]
With --write, the section between the `<!-- bench:station -->` markers of that file is replaced.
"""
import calendar, http.client, os, platform, pwd, re, shutil, socket, statistics
import subprocess, sys, tempfile, threading, time, urllib.request

from benchdoc import parse_args, write_section
from common import (HTTP_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, TRACK_SECONDS, Station,
                    make_library, metric_sum)

# The command line (set by `main`; bench/rss.py and bench/fanout.py import this module for
# its gateway test and report helpers without running it).
IPFM, REALTIME_SECONDS, WRITE = None, 60, None
LATENCY_SECONDS = 90
# The outside poller's pause between two GETs of the IPNS record.
POLL_SECONDS = 0.005
# Passed to the station so that a record's publish time is its EOL minus this.
IPNS_VALIDITY_HOURS = 24
WRK_ROUNDS, WRK_SECONDS, WRK_THREADS, WRK_CONNECTIONS = 3, 10, 2, 32
# Goals from issue 5.
GOAL_P99_S, GOAL_CPU_SHARE, GOAL_RSS_MB, GOAL_RATIO = 0.200, 0.05, 64, 0.5


def histogram(text, name):
    """[(upper bound, cumulative count)] of a Prometheus histogram, and its sum and count."""
    buckets = []
    for m in re.finditer(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M):
        buckets.append((float(m.group(1)), float(m.group(2))))
    total = float(re.search(rf"^{name}_sum (\S+)$", text, re.M).group(1))
    count = float(re.search(rf"^{name}_count (\S+)$", text, re.M).group(1))
    return sorted(buckets), total, count


def quantile(q, buckets):
    """(interpolated value, bucket lower bound, bucket upper bound), as histogram_quantile()."""
    count = buckets[-1][1]
    rank, lower, below = q * count, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower, lower, upper
            inside = cumulative - below
            value = lower + (upper - lower) * ((rank - below) / inside if inside else 1)
            return value, lower, upper
        lower, below = upper, cumulative
    return lower, lower, float("inf")


def varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def record_fields(record):
    """(sequence, publish time as Unix seconds) of a marshalled IpnsEntry."""
    pos, fields = 0, {}
    while pos < len(record):
        key, pos = varint(record, pos)
        if key & 7 == 0:
            fields[key >> 3], pos = varint(record, pos)
        elif key & 7 == 2:
            length, pos = varint(record, pos)
            fields[key >> 3], pos = record[pos:pos + length], pos + length
        else:
            raise ValueError(f"unexpected wire type in IPNS record: {key & 7}")
    # validity (field 4): RFC 3339 with up to nanoseconds, UTC ("…Z").
    text = fields[4].decode().rstrip("Z")
    whole, _, fraction = text.partition(".")
    eol = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")
    return fields[5], eol - IPNS_VALIDITY_HOURS * 3600


class RecordPoller(threading.Thread):
    """GETs the station's IPNS record every POLL_SECONDS on one keep-alive connection; for
    each new sequence, notes response arrival minus the record's publish time."""

    def __init__(self, addr, name):
        super().__init__(daemon=True)
        self.addr, self.name = addr, name
        self.lags, self.stop, self.error = [], threading.Event(), None

    def run(self):
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
        last = None
        try:
            while not self.stop.is_set():
                conn.request("GET", f"/ipns/{self.name}?format=ipns-record")
                response = conn.getresponse()
                body, arrived = response.read(), time.time()
                if response.status != 200:
                    raise RuntimeError(f"record GET answered {response.status}")
                sequence, published = record_fields(body)
                # The first record was published before polling began: no lag to measure.
                if last is not None and sequence != last:
                    self.lags.append(arrived - published)
                last = sequence
                time.sleep(POLL_SECONDS)
        except Exception as e:  # reported by the main thread
            self.error = e
        finally:
            conn.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """Debian's nginx serving DIR/www on 127.0.0.1:PORT from a generated config: no daemon,
    logs and temp files under DIR, unprivileged (`nobody`) when we are root."""

    def __init__(self, directory):
        self.port = free_port()
        www = os.path.join(directory, "www")
        os.makedirs(www, exist_ok=True)
        temp = {k: os.path.join(directory, k) for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            os.makedirs(path, exist_ok=True)
        conf = os.path.join(directory, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
worker_processes auto;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ video/mp2t ts; }}
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    server {{
        listen 127.0.0.1:{self.port};
        root {www};
    }}
}}
""")
        prefix = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for root, dirs, files in os.walk(directory):
                for p in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.chown(p, nobody.pw_uid, nobody.pw_gid)
            prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                      "--clear-groups"]
        self.www = www
        self.proc = subprocess.Popen(prefix + ["nginx", "-p", directory, "-c", conf, "-e",
                                               f"{directory}/error.log"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(directory, "stderr.log"), "w"))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start: "
                                       + open(os.path.join(directory, "stderr.log")).read()
                                       + open(os.path.join(directory, "error.log")).read())
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wrk(url):
    """Requests per second `wrk` reaches on URL; fails on socket errors or non-2xx replies."""
    out = subprocess.run(["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s",
                          url], capture_output=True, text=True, check=True,
                         timeout=WRK_SECONDS + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors on {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run_realtime(tmp, music):
    """Run 1: (b) CPU and RSS over REALTIME_SECONDS, then (c) wrk against nginx."""
    station = Station(IPFM, os.path.join(tmp, "repo-realtime"), music,
                      os.path.join(tmp, "realtime.log"))
    try:
        # Two windows back to back: the first includes start-up (the first track is decoded
        # and its loudness measured before it can play); the second is the steady state a
        # station runs in for days.
        cpu0, t0 = station.cpu_seconds(), time.monotonic()
        time.sleep(REALTIME_SECONDS)
        cpu1, t1 = station.cpu_seconds(), time.monotonic()
        rss_startup = station.status()["VmHWM"]
        time.sleep(REALTIME_SECONDS)
        cpu2, t2 = station.cpu_seconds(), time.monotonic()
        status = station.status()
        rss, rss_anon, rss_file = status["VmHWM"], status["RssAnon"], status["RssFile"]
        rss_own_code = station.own_code_bytes()
        segments = metric_sum(station.metrics(), "ipfm_segments_encoded")
        realtime = {"startup_share": (cpu1 - cpu0) / (t1 - t0), "share": (cpu2 - cpu1) / (t2 - t1),
                    "wall": t1 - t0, "rss": rss, "rss_startup": rss_startup,
                    "rss_anon": rss_anon, "rss_file": rss_file, "rss_own_code": rss_own_code,
                    "segments": segments}

        served = gateway_vs_nginx(station, os.path.join(tmp, "nginx"))
        station.stop()
    finally:
        station.kill()
    return realtime, served


def gateway_vs_nginx(station, nginx_dir):
    """(c) wrk on the newest midfi segment (found through the station's name, fetched by its
    CID) from the running station's gateway and, as a static file, from nginx in NGINX_DIR;
    alternating rounds. bench/rss.py calls this too."""
    playlist, _ = station.get(f"/ipns/{station.name}/midfi.m3u8")
    uri = [l for l in playlist.decode().splitlines() if l and not l.startswith("#")][-1]
    body, headers = station.get(f"/ipns/{station.name}/{uri}")
    cid = headers["X-Ipfs-Roots"].split(",")[-1].strip()
    nginx = Nginx(nginx_dir)
    try:
        with open(os.path.join(nginx.www, "segment.ts"), "wb") as f:
            f.write(body)
        os.chmod(os.path.join(nginx.www, "segment.ts"), 0o644)
        ours = f"http://{station.addr}/ipfs/{cid}"
        theirs = f"http://127.0.0.1:{nginx.port}/segment.ts"
        for url in (ours, theirs):
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
                if r.read() != body:
                    raise RuntimeError(f"{url} does not serve the segment's bytes")
        ipfm_rps, nginx_rps = [], []
        for _ in range(WRK_ROUNDS):  # alternate, so a change of load hits both alike
            ipfm_rps.append(wrk(ours))
            nginx_rps.append(wrk(theirs))
    finally:
        nginx.stop()
    return {"ipfm": statistics.median(ipfm_rps), "nginx": statistics.median(nginx_rps),
            "ipfm_all": ipfm_rps, "nginx_all": nginx_rps, "bytes": len(body), "uri": uri}


def run_latency(tmp, music):
    """Run 2: (a) the publish latency histogram and the outside poller's lags over
    LATENCY_SECONDS of 2-s segments."""
    station = Station(IPFM, os.path.join(tmp, "repo-latency"), music,
                      os.path.join(tmp, "latency.log"),
                      ["--segment-seconds", "2", "--ipns-validity-hours", str(IPNS_VALIDITY_HOURS)])
    try:
        station.wait_healthy()
        poller = RecordPoller(station.addr, station.name)
        poller.start()
        time.sleep(LATENCY_SECONDS)
        poller.stop.set()
        poller.join(HTTP_TIMEOUT + 1)
        if poller.error:
            raise RuntimeError(f"record poller failed: {poller.error!r}")
        text = station.metrics()
        station.stop()
    finally:
        station.kill()
    return histogram(text, "ipfm_publish_latency_seconds"), poller.lags


def percentile(q, values):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def tree_state():
    """Which code was measured: HEAD and the uncommitted changes of the work tree."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = lambda *a: subprocess.run(["git", "-C", root, *a], capture_output=True,
                                    text=True).stdout.rstrip("\n")
    head = git("log", "-1", "--format=%h (%s)")
    # Porcelain lines are "XY path": the status columns may start with a space.
    changed = [l[3:] for l in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    if not changed:
        return f"commit {head}, clean work tree"
    areas = sorted({p.split("/")[0] for p in changed})
    return (f"commit {head} plus uncommitted changes in {len(changed)} files "
            f"({', '.join(areas)}) at the time of the run")


def machine():
    model = "unknown CPU"
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                     if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{os.cpu_count()} × {model}, {platform.system()} {platform.release()}; "
            f"{nginx.replace('nginx version: ', '')}; {wrk_v.split(' [')[0]}")


def met(ok):
    return "yes" if ok else "**no**"


def fmt_load(load):
    return "/".join(f"{x:.1f}" for x in load)


def main():
    global IPFM, REALTIME_SECONDS, WRITE
    args, WRITE = parse_args(sys.argv[1:])
    if not args:
        sys.exit(__doc__)
    IPFM = args[0]
    REALTIME_SECONDS = int(args[1]) if len(args) > 1 else REALTIME_SECONDS
    for tool in ("ffmpeg", "nginx", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run `make deps-bench` (Debian packages nginx, wrk)")
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(IPFM)))
    state = f"{tree_state()} (binary built {built})"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody and must reach their files
        music = os.path.join(tmp, "music")
        make_library(music)
        realtime, served = run_realtime(tmp, music)
        (buckets, latency_sum, latency_count), lags = run_latency(tmp, music)
    load_after = os.getloadavg()

    if latency_count < LATENCY_SECONDS / 2 / 2:
        raise RuntimeError(f"only {latency_count:.0f} publishes in {LATENCY_SECONDS} s")
    p50, p50_lo, p50_hi = quantile(0.5, buckets)
    p99, p99_lo, p99_hi = quantile(0.99, buckets)
    if len(lags) < latency_count / 2:
        raise RuntimeError(f"the poller saw {len(lags)} of {latency_count:.0f} publishes")
    lag50, lag99 = percentile(0.5, lags), percentile(0.99, lags)
    media = realtime["segments"] / 3 * 6
    ratio = served["ipfm"] / served["nginx"]
    rss_mb = realtime["rss"] / 1e6

    lines = []
    out = lines.append
    out("## Station: publish latency, realtime CPU and memory, gateway vs nginx\n")
    out(f"Command: `make bench` (runs `scripts/in-loopback-netns.sh .venv/bin/python bench/station.py "
        f"target/release/ipfm {REALTIME_SECONDS}`). Measured: {state}. Each run is a fresh "
        f"`ipfm station` process on a fresh repo, loopback only, no bootstrap peers, playing a "
        f"generated library (two {TRACK_SECONDS // 60}-min 44.1 kHz stereo FLAC tracks).\n")
    out("| what | ipfm | reference | goal | met? |")
    out("|---|---|---|---|---|")
    out(f"| segment set complete → new root served (outside poll), p50 | {lag50 * 1000:.0f} ms "
        f"| – | – | – |")
    out(f"| segment set complete → new root served (outside poll), p99 | {lag99 * 1000:.0f} ms "
        f"| – | < {GOAL_P99_S * 1000:.0f} ms | {met(lag99 < GOAL_P99_S)} |")
    out(f"| first segment stored → publish done incl. state persisted (`/metrics`), p50 "
        f"| {p50 * 1000:.0f} ms (bucket {p50_lo * 1000:.0f}–{p50_hi * 1000:.0f} ms) | – | – | – |")
    out(f"| first segment stored → publish done incl. state persisted (`/metrics`), p99 "
        f"| {p99 * 1000:.0f} ms (bucket {p99_lo * 1000:.0f}–{p99_hi * 1000:.0f} ms) | – "
        f"| < {GOAL_P99_S * 1000:.0f} ms "
        f"| {met(p99 < GOAL_P99_S) + ('' if p99_hi <= GOAL_P99_S or p99 >= GOAL_P99_S else ' (interpolated)')} |")
    out(f"| realtime: CPU share of one core, first {REALTIME_SECONDS} s (start-up) "
        f"| {realtime['startup_share']:.1%} | – | – | – |")
    out(f"| realtime: CPU share of one core, next {REALTIME_SECONDS} s (steady state) "
        f"| {realtime['share']:.1%} | – "
        f"| ≤ {GOAL_CPU_SHARE:.0%} | {met(realtime['share'] <= GOAL_CPU_SHARE)} |")
    out(f"| realtime: peak RSS over both windows | {rss_mb:.0f} MB "
        f"({realtime['rss'] / 2**20:.0f} MiB; {realtime['rss_startup'] / 1e6:.0f} MB after the "
        f"first window) | – | ≤ {GOAL_RSS_MB} MB | {met(rss_mb <= GOAL_RSS_MB)} |")
    out(f"| gateway GET of one segment, req/s | {served['ipfm']:.0f} | nginx {served['nginx']:.0f} "
        f"| ratio ≥ {GOAL_RATIO} | {met(ratio >= GOAL_RATIO)} (ratio **{ratio:.2f}**) |")
    out("")
    out(f"**Publish latency** (run 2: 2-s segments, {LATENCY_SECONDS} s, "
        f"{latency_count:.0f} publishes), measured two ways. *Outside* ({len(lags)} new roots): "
        f"a client GETs `/ipns/<name>?format=ipns-record` every {POLL_SECONDS * 1000:.0f} ms on "
        "one keep-alive connection; for each new record, the arrival of the first response "
        "carrying it minus the record's publish time (its EOL minus the "
        f"{IPNS_VALIDITY_HOURS}-h validity: the station stamps it when all three renditions "
        "of the segment are in and the publish starts). That covers building the root "
        "(player, playlists, nowplaying.json, segment folders), pinning it, storing the IPNS "
        "sequence (fsync'd) and signing, up to the gateway serving it; the poll interval "
        "is its resolution, so it errs high. Nearest-rank percentiles. *Inside*: the "
        "station's own `ipfm_publish_latency_seconds` histogram on `/metrics`, mean "
        f"{latency_sum / latency_count * 1000:.1f} ms. Its clock starts when the first "
        "rendition's segment of a sequence has been stored, so it also includes waiting for "
        "the other two renditions of the cut, and it includes the station's progress (media "
        "sequence, playout position, windows: one atomic fsync'd write made before the root "
        "becomes visible, so a crash never reuses a published sequence number): an upper "
        "bound. Its buckets double from "
        "1 ms; p50/p99 are interpolated inside their bucket as Prometheus' "
        "`histogram_quantile()` does, and the bucket is the hard bound.")
    out("")
    out(f"**Realtime CPU and memory** (run 1: default settings, 6-s segments): CPU = utime + "
        f"stime of the whole process (encoder threads, station loop, gateway, libp2p swarm) "
        f"over two {realtime['wall']:.0f}-s windows of wall time after it printed its player "
        "URL, from `/proc/PID/stat`: the first includes start-up (the first track is decoded "
        "and its loudness measured before it plays), the second is the steady state the goal "
        "is about; peak RSS = `VmHWM` at the end of each window (start-up included). "
        f"It encoded {realtime['segments']:.0f} segments ({media:.0f} s of media per "
        "rendition, three renditions) meanwhile. No listener was connected.")
    out("")
    if rss_mb > GOAL_RSS_MB:
        out(f"RSS goal missed. At the end of the window {realtime['rss_anon'] / 1e6:.0f} MB were "
            f"anonymous memory (heap, thread stacks, sled's cache of metadata, the block read cache, segments in flight) and "
            f"{realtime['rss_file'] / 1e6:.0f} MB file-backed pages: "
            f"{realtime['rss_own_code'] / 1e6:.0f} MB of the ipfm binary's own code, the rest "
            "the system FFmpeg libraries and the ~135 shared libraries Debian builds them "
            "against (libavcodec alone pulls in librsvg, libx265, libdav1d…; shared with any "
            "other process using them). The encoder on its own stays within the goal (see the "
            "encoder section). Done already: resampling with libswresample directly, so "
            "libavfilter and its dependency tree are no longer linked, and glibc's malloc "
            "arenas capped at two; tried and not kept: thin LTO (larger code, higher RSS); "
            "sled's page cache size: see the station memory notes. The way down not taken "
            "yet: a static FFmpeg build with only the codecs a station needs.")
        out("")
    out(f"**Gateway vs nginx** (same run, the station still encoding): `wrk -t{WRK_THREADS} "
        f"-c{WRK_CONNECTIONS} -d{WRK_SECONDS}s` on one {served['bytes'] / 1024:.0f} KiB segment "
        f"(`{served['uri']}`): ipfm's `/ipfs/<cid>` (block read from the store's 4 MiB read cache, else its block file, not re-hashed: like Kubo's default "
        "`HashOnRead=false`, the store verified it when it was put; CID-derived ETag and "
        "immutable caching headers) vs nginx 1.22 serving the same bytes as a static file "
        "(`sendfile on`, `access_log off`, `worker_processes auto`, generated config in a temp "
        f"dir, run as `nobody`). {WRK_ROUNDS} alternating rounds each, median; all rounds req/s: "
        f"ipfm {', '.join(f'{x:.0f}' for x in served['ipfm_all'])}; nginx "
        f"{', '.join(f'{x:.0f}' for x in served['nginx_all'])}. Both servers and `wrk` share "
        "the same two cores, so this measures per-request cost, not network capacity.")
    out("")
    out(f"Machine: {machine()}. Load average (1/5/15 min) {fmt_load(load_before)} before, "
        f"{fmt_load(load_after)} after: the machine is shared with other builds and tests, "
        "which inflates the CPU share (time lost to contention is not counted, but cache and "
        "scheduling effects are) and the latency tail; the req/s ratio compares rounds run "
        "alternately under the same load.")
    text = "\n".join(lines).rstrip()
    print(text)
    if WRITE:
        write_section(WRITE, "station", text)


if __name__ == "__main__":
    main()
