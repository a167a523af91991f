"""The studio measured from outside, in tmux: start to first complete frame with a large
history, peak memory while 8 streamed 1536x1024 jobs deliver 3 partial images each, and how
long a key press takes to reach the screen meanwhile. easel writes the figures itself when
EASEL_PERF_LOG names a file (see src/studio/runtime.rs)."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

easel, fake, work, out, quick, records = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1", int(sys.argv[6])
sock = f"easel-bench-{os.getpid()}"


def tmux(*args):
    return subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", *args], capture_output=True, text=True, check=False)


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def emit(o, **kw):
    o.write(json.dumps(kw) + "\n")


def start(env, log, cols=200, rows=60):
    envs = " ".join(f"{k}='{v}'" for k, v in env.items())
    tmux("kill-server")
    # In-process: these are the studio's own figures (scripts/bench_service.py measures the
    # service next to them).
    tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), f"env -i PATH=/usr/bin:/bin TERM=xterm-256color EASEL_SERVICE=off {envs} EASEL_PERF_LOG='{log}' {easel}")


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


home = tempfile.mkdtemp(prefix="easel-bench-home-")
with open(out, "a") as o:
    # 1. Start-up with the history the store benchmark prepared.
    store = os.path.join(work, "store")
    firsts = []
    for i in range(5 if quick else 9):
        log = os.path.join(work, f"first-{i}.log")
        if os.path.exists(log):
            os.remove(log)
        start({"HOME": home, "EASEL_DATA_DIR": store, "EASEL_GRAPHICS": "halfblocks", "EASEL_PERF_EXIT": "first-frame"}, log)
        wait_for(lambda: any("peak_rss_mb" in l for l in read_log(log)), 20)
        firsts += [l["first_frame_ms"] for l in read_log(log) if "first_frame_ms" in l]
        tmux("kill-server")
        time.sleep(0.2)
    if firsts:
        emit(o, name=f"studio: start to first complete frame with {records:,} history entries", unit="ms", easel=statistics.median(firsts),
             baseline_name=None, baseline=None, ratio=None, target="≤ 150 ms", samples=len(firsts))
        print(f"first frame: median {statistics.median(firsts):.1f} ms over {len(firsts)} starts")

    # 2. Eight streamed jobs against the fake server, keys pressed meanwhile.
    server = subprocess.Popen([fake, "600", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().strip()
    data = tempfile.mkdtemp(prefix="easel-bench-data-")
    conf_dir = os.path.join(home, ".config", "easel")
    os.makedirs(conf_dir, exist_ok=True)
    config = os.path.join(conf_dir, "config.toml")
    with open(config, "w") as c:
        c.write('[defaults]\nsize = "1536x1024"\nstream = true\npartial_images = 3\n[queue]\nconcurrency = 8\n')
    log = os.path.join(work, "stream.log")
    if os.path.exists(log):
        os.remove(log)
    start({"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"), "EASEL_DATA_DIR": data, "EASEL_GRAPHICS": "halfblocks",
           "COLORTERM": "truecolor", "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base}, log, 160, 45)
    wait_for(lambda: "Prompt" in tmux("capture-pane", "-p").stdout, 20)
    tmux("send-keys", "-l", "a lighthouse at dusk, watercolor")
    for _ in range(8):
        tmux("send-keys", "C-s")
        time.sleep(0.05)
    # Keys while the partial images stream in (each job: 3 partials and the final, 0.6 s apart).
    t_end = time.time() + (4 if quick else 6)
    while time.time() < t_end:
        tmux("send-keys", "-l", "x")
        time.sleep(0.07)
    wait_for(lambda: " 0▶ 0·" in tmux("capture-pane", "-p").stdout, 60)
    tmux("send-keys", "C-c")
    wait_for(lambda: any("peak_rss_mb" in l for l in read_log(log)), 20)
    tmux("kill-server")
    server.stdin.close()
    server.wait(timeout=10)
    lines = read_log(log)
    keys = [l["key_to_screen_ms"] for l in lines if "key_to_screen_ms" in l]
    peaks = [l["peak_rss_mb"] for l in lines if l.get("peak_rss_mb")]
    if keys:
        keys.sort()
        p95 = keys[min(len(keys) - 1, int(len(keys) * 0.95))]
        emit(o, name="studio: key press to screen while 8 streamed jobs deliver partial images", unit="ms", easel=statistics.median(keys),
             baseline_name=None, baseline=None, ratio=None, target=f"≤ 16 ms (p95 {p95:.1f} ms, max {keys[-1]:.1f} ms)", samples=len(keys))
        print(f"key to screen: median {statistics.median(keys):.2f} ms, p95 {p95:.2f}, max {keys[-1]:.2f} over {len(keys)} keys")
    if peaks:
        emit(o, name="studio: peak memory, 8 streamed jobs of 1536x1024 with 3 partial images", unit="MB", easel=peaks[-1],
             baseline_name=None, baseline=None, ratio=None, target="≤ 200 MB", samples=1)
        print(f"peak memory: {peaks[-1]:.1f} MB")
shutil.rmtree(home, ignore_errors=True)
