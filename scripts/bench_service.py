"""The service (issue 11) measured from outside, each figure next to in-process mode in the same
run:

1. `easel history list` (newest 50) on a large history: through a running service vs
   in-process (EASEL_SERVICE=off), median wall time of many runs.
2. Studio start to first complete frame: in-process, with the service running, and when the
   studio has to start the service.
3. Key press to screen while 8 streamed jobs deliver partial images, through the service.
4. Events fanned out to 4 subscribed clients during 8 streamed jobs: for every event, how far
   the slowest client was behind the fastest.

usage: bench_service.py EASEL FAKE_SERVER WORK OUT QUICK RECORDS
"""

import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

easel, fake, work, out, quick, records = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1", int(sys.argv[6])
tsock = f"easel-bench-svc-{os.getpid()}"
store = os.path.join(work, "store")
home = tempfile.mkdtemp(prefix="easel-bench-svc-")
runtime = tempfile.mkdtemp(prefix="ebr-", dir="/tmp")
os.chmod(runtime, 0o700)


def env(extra=None):
    e = {"PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": runtime, "XDG_STATE_HOME": os.path.join(home, "state"),
         "XDG_CONFIG_HOME": os.path.join(home, ".config"), "LANG": "C.UTF-8"}
    e.update(extra or {})
    return e


def easel_run(args, extra=None):
    return subprocess.run([easel, *args], env=env(extra), capture_output=True, text=True, check=False)


def tmux(*args):
    return subprocess.run(["tmux", "-L", tsock, "-f", "/dev/null", *args], capture_output=True, text=True, check=False)


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def emit(o, **kw):
    o.write(json.dumps(kw) + "\n")


def stop(data):
    easel_run(["service", "stop", "--force"], {"EASEL_DATA_DIR": data})


def studio(extra, log, cols=200, rows=60):
    envs = " ".join(f"{k}='{v}'" for k, v in env(extra).items())
    tmux("kill-server")
    tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), f"env -i TERM=xterm-256color {envs} EASEL_PERF_LOG='{log}' {easel}")


def median_wall(args, extra, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = easel_run(args, extra)
        times.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            raise SystemExit(f"easel {' '.join(args)} failed: {r.stderr}")
    return statistics.median(times), len(times)


def frames(sock):
    """Length-delimited frames (4-byte big-endian length) from a socket, as parsed JSON."""
    buf = b""
    while True:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            buf += chunk
        n = struct.unpack(">I", buf[:4])[0]
        yield json.loads(buf[4:4 + n])
        buf = buf[4 + n:]


def send(sock, obj):
    b = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(b)) + b)


def subscriber(path, protocol, seen, ready, stop_at):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        send(s, {"type": "hello", "protocol": protocol, "client": "bench"})
        it = frames(s)
        welcome = next(it)
        if welcome.get("type") != "welcome":
            raise SystemExit(f"the service refused the benchmark's client: {welcome}")
        send(s, {"type": "request", "id": 1, "request": {"op": "subscribe"}})
        next(it)
    finally:
        # Never leave the main thread waiting for a subscriber that failed.
        ready.release()
    s.settimeout(1.0)
    try:
        for f in it:
            if f.get("type") == "event":
                e = f["event"]
                key = (e["event"], e.get("job") or (e.get("record") or {}).get("id"), e.get("index"), (e.get("record") or {}).get("status"))
                seen.setdefault(key, time.perf_counter())
            if time.time() > stop_at:
                break
    except (socket.timeout, OSError):
        pass


with open(out, "a") as o:
    # 1. history list, newest 50, on the prepared history.
    n = 11 if quick else 31
    stop(store)
    inproc, k = median_wall(["history", "list", "--limit", "50"], {"EASEL_DATA_DIR": store, "EASEL_SERVICE": "off"}, n)
    easel_run(["service", "run"], {"EASEL_DATA_DIR": store})
    easel_run(["history", "list", "--limit", "1"], {"EASEL_DATA_DIR": store})  # warm the service
    served, _ = median_wall(["history", "list", "--limit", "50"], {"EASEL_DATA_DIR": store}, n)
    emit(o, name=f"service: `easel history list` (newest 50) of {records:,} records, through the service", unit="ms", easel=served,
         baseline_name="in-process (EASEL_SERVICE=off)", baseline=inproc, ratio=served / inproc, target="≤ 1.5× in-process", samples=k)
    print(f"history list: service {served:.1f} ms, in-process {inproc:.1f} ms ({served / inproc:.2f}x) over {k} runs")

    # 2. Studio start to first frame: in-process, service running, service started by the studio.
    def first_frames(extra, before=None, runs=5 if quick else 9):
        got = []
        for i in range(runs):
            if before:
                before()
            log = os.path.join(work, f"svc-first-{i}.log")
            if os.path.exists(log):
                os.remove(log)
            studio({"EASEL_DATA_DIR": store, "EASEL_GRAPHICS": "halfblocks", "EASEL_PERF_EXIT": "first-frame", **extra}, log)
            wait_for(lambda: any("peak_rss_mb" in l for l in read_log(log)), 30)
            got += [l["first_frame_ms"] for l in read_log(log) if "first_frame_ms" in l]
            tmux("kill-server")
            time.sleep(0.2)
        return got

    stop(store)
    cold = first_frames({}, before=lambda: stop(store))
    easel_run(["service", "run"], {"EASEL_DATA_DIR": store})
    warm = first_frames({})
    stop(store)
    alone = first_frames({"EASEL_SERVICE": "off"})
    if warm and alone:
        emit(o, name=f"service: studio start to first frame with {records:,} records, service running", unit="ms", easel=statistics.median(warm),
             baseline_name="in-process", baseline=statistics.median(alone), ratio=statistics.median(warm) / statistics.median(alone),
             target="≤ 150 ms", samples=len(warm))
        print(f"first frame: service running {statistics.median(warm):.1f} ms, in-process {statistics.median(alone):.1f} ms")
    if cold and alone:
        emit(o, name=f"service: studio start to first frame with {records:,} records, starting the service", unit="ms", easel=statistics.median(cold),
             baseline_name="in-process", baseline=statistics.median(alone), ratio=statistics.median(cold) / statistics.median(alone),
             target="≤ 300 ms", samples=len(cold))
        print(f"first frame: starting the service {statistics.median(cold):.1f} ms")

    # 3 and 4. Eight streamed jobs through the service; keys in the studio; 4 subscribers.
    server = subprocess.Popen([fake, "600", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().strip()
    data = tempfile.mkdtemp(prefix="easel-bench-svc-data-")
    conf_dir = os.path.join(home, ".config", "easel")
    os.makedirs(conf_dir, exist_ok=True)
    with open(os.path.join(conf_dir, "config.toml"), "w") as c:
        c.write('[defaults]\nsize = "1536x1024"\nstream = true\npartial_images = 3\n[queue]\nconcurrency = 8\n')
    keyed = {"EASEL_DATA_DIR": data, "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base}
    easel_run(["service", "run"], keyed)
    st = json.loads(easel_run(["service", "status", "--json"], keyed).stdout)
    seen = [dict() for _ in range(4)]
    ready = threading.Semaphore(0)
    stop_at = time.time() + 60
    threads = [threading.Thread(target=subscriber, args=(st["socket"], st["protocol"], seen[i], ready, stop_at), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    log = os.path.join(work, "svc-stream.log")
    if os.path.exists(log):
        os.remove(log)
    studio({**keyed, "EASEL_GRAPHICS": "halfblocks", "COLORTERM": "truecolor"}, log, 160, 45)
    wait_for(lambda: "Prompt" in tmux("capture-pane", "-p").stdout, 20)
    tmux("send-keys", "-l", "a lighthouse at dusk, watercolor")
    for _ in range(8):
        tmux("send-keys", "C-s")
        time.sleep(0.05)
    t_end = time.time() + (4 if quick else 6)
    while time.time() < t_end:
        tmux("send-keys", "-l", "x")
        time.sleep(0.07)
    wait_for(lambda: " 0▶ 0·" in tmux("capture-pane", "-p").stdout, 60)
    tmux("send-keys", "C-c")
    wait_for(lambda: any("peak_rss_mb" in l for l in read_log(log)), 20)
    tmux("kill-server")
    stop(data)
    for t in threads:
        t.join(timeout=5)
    server.stdin.close()
    server.wait(timeout=10)
    keys = sorted(l["key_to_screen_ms"] for l in read_log(log) if "key_to_screen_ms" in l)
    if keys:
        p95 = keys[min(len(keys) - 1, int(len(keys) * 0.95))]
        emit(o, name="service: key press to screen while 8 streamed jobs deliver, through the service", unit="ms", easel=p95,
             baseline_name=None, baseline=None, ratio=None, target=f"p95 ≤ 16 ms (median {statistics.median(keys):.1f}, max {keys[-1]:.1f})", samples=len(keys))
        print(f"key to screen through the service: p95 {p95:.2f} ms, median {statistics.median(keys):.2f}, max {keys[-1]:.2f} over {len(keys)} keys")
    common = set(seen[0]).intersection(*seen[1:])
    spreads = sorted((max(s[k] for s in seen) - min(s[k] for s in seen)) * 1000 for k in common)
    if spreads:
        worst = spreads[-1]
        p95 = spreads[min(len(spreads) - 1, int(len(spreads) * 0.95))]
        emit(o, name="service: events fanned out to 4 clients during 8 streamed jobs, slowest client behind the fastest", unit="ms", easel=worst,
             baseline_name=None, baseline=None, ratio=None, target=f"≤ 16 ms, one frame (p95 {p95:.1f} ms, {len(spreads)} events each)", samples=len(spreads))
        print(f"fan-out to 4 clients: worst spread {worst:.2f} ms, p95 {p95:.2f} ms over {len(spreads)} events")
    shutil.rmtree(data, ignore_errors=True)
stop(store)
shutil.rmtree(home, ignore_errors=True)
shutil.rmtree(runtime, ignore_errors=True)
