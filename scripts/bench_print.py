"""Printing a 1024x1024 PNG as an 80x40-cell half-block picture: easel view against chafa and
viu on the same files and size. Time is the median wall time of whole runs (the process start
included, as a user would see it); bytes are what each writes to its output."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

easel, pics, out, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
files = sorted(os.path.join(pics, f) for f in os.listdir(pics) if f.endswith(".png"))
rounds = 5 if quick else 15
env = dict(os.environ)
env.pop("COLORTERM", None)  # every tool picks its colours the same way: from the environment

peers = {"easel view": lambda f: [easel, "view", f, "--cols", "80", "--rows", "40"]}
if shutil.which("chafa"):
    peers["chafa --format symbols --symbols vhalf"] = lambda f: ["chafa", "--format", "symbols", "--symbols", "vhalf", "--size", "80x40", f]
if shutil.which("viu"):
    peers["viu"] = lambda f: ["viu", "-w", "80", "-h", "40", f]

def measure(cmd_for):
    times, sizes = [], []
    for _ in range(rounds):
        for f in files:
            t = time.perf_counter()
            r = subprocess.run(cmd_for(f), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, check=False)
            times.append((time.perf_counter() - t) * 1000)
            sizes.append(len(r.stdout))
    return statistics.median(times), statistics.median(sizes)

# Alternate the tools round by round so machine drift hits them alike.
results = {name: measure(cmd) for name, cmd in peers.items()}
e_time, e_bytes = results["easel view"]
with open(out, "a") as o:
    for name, (t, b) in results.items():
        if name == "easel view":
            continue
        o.write(json.dumps({"name": f"print a 1024x1024 PNG as 80x40 half-blocks: time vs {name}", "unit": "ms", "easel": e_time,
                            "baseline_name": name, "baseline": t, "ratio": e_time / t, "target": "≤ 1× (time ≤ peer)", "samples": rounds * len(files)}) + "\n")
        o.write(json.dumps({"name": f"print a 1024x1024 PNG as 80x40 half-blocks: bytes vs {name}", "unit": "bytes", "easel": e_bytes,
                            "baseline_name": name, "baseline": b, "ratio": e_bytes / b, "target": "≤ 1× (bytes ≤ peer)", "samples": rounds * len(files)}) + "\n")
        print(f"{name}: easel {e_time:.1f} ms / {e_bytes:.0f} B, peer {t:.1f} ms / {b:.0f} B")
    if len(results) == 1:
        o.write(json.dumps({"name": "print a 1024x1024 PNG as 80x40 half-blocks", "unit": "ms", "easel": e_time, "baseline_name": None,
                            "baseline": None, "ratio": None, "target": "no peer installed", "samples": rounds * len(files)}) + "\n")
