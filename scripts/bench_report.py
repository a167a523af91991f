"""Write docs/benchmarks.md from the JSON lines the benchmarks append (scripts/bench)."""

import datetime
import json
import os
import platform
import subprocess
import sys

results, notes, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows = [json.loads(l) for l in open(results) if l.strip()]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
mem = sh("free -g | awk '/Mem:/ {print $2}'")
rustc = sh("rustc --version")
commit = sh("git rev-parse --short HEAD")


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "bytes":
        return f"{v:,.0f} B"
    if unit == "ΔE":
        return f"{v:.2f}"
    if unit == "MB":
        return f"{v:.1f} MB"
    if unit.startswith("%"):
        return f"{v:.1f} {unit}"
    if unit not in ("ms", ""):
        return f"{v:.3g} {unit}"
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


print("# Benchmarks\n")
print("Produced by `scripts/bench`" + (" --quick" if quick else "") + " — do not edit by hand; the notes below the table are kept in")
print("`scripts/bench_notes.md`. Every figure is a median; a baseline is measured in the same run, alternating")
print("with easel, so the ratio holds even when the shared machine's speed drifts.\n")
print(f"- machine: {cpu}, {os.cpu_count()} cores, {mem} GB memory, {platform.system()} {platform.release()}")
print(f"- built with: {rustc}; easel commit {commit}; run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n")
print("| figure | easel | baseline | baseline median | ratio | target | samples |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    ratio = f"{r['ratio']:.2f}×" if r.get("ratio") is not None else "—"
    print(f"| {r['name']} | {fmt(r['easel'], r['unit'])} | {r.get('baseline_name') or '—'} | {fmt(r.get('baseline'), r['unit'])} | {ratio} | {r['target']} | {r['samples']} |")
skipped = [l.strip() for l in open(notes) if l.strip()]
if skipped:
    print("\n## Skipped\n")
    for s in skipped:
        print(f"- {s}")
print("\n## How to reproduce\n")
print("```\nscripts/bench            # everything, about 10 minutes on 2 cores\nscripts/bench --quick    # smaller data, fewer rounds\n"
      "cargo bench --bench client   # one group\ncargo bench --bench store\ncargo bench --bench studio\nscripts/crash-test 100   # kill -9 durability runs\n```\n")
here = os.path.dirname(os.path.abspath(__file__))
notes_md = os.path.join(here, "bench_notes.md")
if os.path.exists(notes_md):
    print(open(notes_md).read())
