"""Shared by the station benchmarks (bench/station.py, bench/rss.py): the generated music
library, `ipfm station` as a child process, and what /proc says about a process.

The station runs on loopback ports only and dials no bootstrap peer: run the scripts inside
scripts/in-loopback-netns.sh.
"""
import os, queue, re, signal, subprocess, threading, time, urllib.request

# Bounds on every wait: a station that has not printed its URL or stopped by then is broken.
START_TIMEOUT, STOP_TIMEOUT, HTTP_TIMEOUT = 120, 20, 10
TRACK_SECONDS = 240

# A chord with tremolo, a plucked arpeggio and a little noise, so the AAC encoders have real
# work to do (a pure sine would flatter the encoder).
LEFT = ("0.12*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.25*t))+0.08*sin(2*PI*277.18*t)"
        "+0.25*exp(-12*mod(t,0.5))*sin(2*PI*(440+220*mod(floor(t*2),4))*t)+0.02*(random(0)-0.5)")
RIGHT = ("0.12*sin(2*PI*220.5*t)*(0.6+0.4*cos(2*PI*0.25*t))+0.08*sin(2*PI*329.63*t)"
         "+0.25*exp(-12*mod(t+0.25,0.5))*sin(2*PI*(330+110*mod(floor(t*2+0.5),4))*t)"
         "+0.02*(random(1)-0.5)")


def make_library(music):
    """Two TRACK_SECONDS-long 44.1 kHz stereo FLAC tracks in the new directory MUSIC."""
    os.makedirs(music)
    for i, (title, pitch) in enumerate([("Bench One", 1.0), ("Bench Two", 1.25)]):
        exprs = f"{LEFT}|{RIGHT}".replace("*t)", f"*t*{pitch})")
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                        "-i", f"aevalsrc=exprs='{exprs}':s=44100:d={TRACK_SECONDS}",
                        "-metadata", f"title={title}", "-metadata", "artist=ipfm bench",
                        "-c:a", "flac", os.path.join(music, f"{i:02} {title}.flac")],
                       check=True, timeout=300)


def status_bytes(pid):
    """Every `Key: N kB` line of /proc/PID/status (VmHWM, RssAnon, RssFile…), in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            m = re.match(r"^(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2)) * 1024
    return out


def cpu_seconds(pid):
    """utime + stime of the process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces and parentheses: split after its ")".
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_mappings(pid):
    """Resident bytes per mapped file (all its mappings summed), from /proc/PID/smaps."""
    rss, current = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split()
                current = fields[5] if len(fields) >= 6 and fields[5].startswith("/") else None
            elif line.startswith("Rss:") and current:
                rss[current] = rss.get(current, 0) + int(line.split()[1]) * 1024
    return rss


def metric_sum(text, name):
    """The sum of every sample of the Prometheus metric NAME in the exposition TEXT."""
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name) and not l.startswith("#"))


class Child:
    """What the benchmarks do with a child process `self.proc` whose stderr goes to the file
    `self.log` (`self.what` names it in errors): stop it, kill it, read /proc about it."""

    def stop(self):
        """SIGTERM; the child must exit 0 within STOP_TIMEOUT (a station publishes a final
        root first)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.what} ignored SIGTERM for {STOP_TIMEOUT} s")
        if code != 0:
            raise RuntimeError(f"{self.what} exited {code} on SIGTERM: {self.log_tail()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self):
        return open(self.log).read()[-2000:]

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def status(self):
        """/proc/PID/status's sizes, in bytes (see `status_bytes`)."""
        return status_bytes(self.proc.pid)


class Station(Child):
    """`ipfm station` (the BINARY) as a child process on loopback ports with no bootstrap
    peers; stdout drained on a thread, stderr to the file LOG. Ready once it printed its
    player URL (it has bound its listeners by then)."""

    def __init__(self, binary, repo, music, log, extra=(), env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("IPFM_")}
        env["RUST_LOG"] = "warn"
        # Set on purpose by the caller (bench/rss.py compares e.g. IPFM_SLED_CACHE_BYTES).
        env.update(env_extra or {})
        self.binary, self.log, self.what = binary, log, "ipfm station"
        cmd = [binary, "--repo", repo, "station", "--music", music, "--listen", "127.0.0.1:0",
               "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--no-default-bootstrap", *extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(log, "w"), env=env, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"ipfm station printed no player URL: {self.log_tail()}")
            m = re.match(r"player:\s+http://([^/]+)/ipns/([^/]+)/", line)
            if m:
                self.addr, self.name = m.group(1), m.group(2)
                return

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.addr}{path}", timeout=HTTP_TIMEOUT) as r:
            return r.read(), r.headers

    def metrics(self):
        return self.get("/metrics")[0].decode()

    def own_code_bytes(self):
        """Resident bytes of the ipfm binary's own mapped pages (its code), from smaps."""
        return file_mappings(self.proc.pid).get(os.path.realpath(self.binary), 0)

    def wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0]:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"/healthz never answered 200: {self.log_tail()}")
