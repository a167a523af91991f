"""Colour fidelity of pictures printed as text: `easel view` at 80x40 cells against chafa's
default symbols, on natural photographs (scikit-image's sample data: astronaut, coffee, chelsea),
in 256 colours (no COLORTERM) and in truecolor (COLORTERM=truecolor), with the bytes written.

How the error is measured: each tool's output is parsed (SGR colours, reverse video) into cells;
each cell is drawn at 8x16 pixels: block elements (U+2580..U+259F) by their geometry, other
symbols (chafa's box-drawing) rasterised from DejaVu Sans Mono, the foreground over the
background in linear light. The photograph is resized (box filter, linear light) to the same
8x16 pixels a cell. Both are then averaged (linear light) to a grid and compared in CIELAB (D65):
mean CIEDE2000 and mean CIE76 over the grid. Two grids: "half-cell" (1x2 per cell, what half-
blocks can show) and "fine" (2x4 per cell, which credits symbols finer than half-blocks).
A terminal's default background is taken as black.

usage: bench_colour.py EASEL OUT.jsonl WORKDIR [--print]
Skips with a note (exit 0, a line on stdout starting "SKIP") when chafa, numpy/scikit-image
or the photographs cannot be had.
"""

import json
import os
import re
import shutil
import subprocess
import sys

easel, out_path, work = sys.argv[1], sys.argv[2], sys.argv[3]
show = "--print" in sys.argv

if not shutil.which("chafa"):
    print("SKIP colour fidelity: chafa is not installed (apt-get install chafa)")
    sys.exit(0)
try:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from skimage import data
    from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab
except ImportError as e:
    print(f"SKIP colour fidelity: {e} (pip install scikit-image)")
    sys.exit(0)

CW, CH = 8, 16
os.makedirs(work, exist_ok=True)
photos = []
for name in ["astronaut", "coffee", "chelsea"]:
    path = os.path.join(work, f"{name}.png")
    try:
        if not os.path.exists(path):
            Image.fromarray(getattr(data, name)()).convert("RGB").save(path)
    except Exception as e:  # the sample data may need a download in some versions
        print(f"SKIP colour fidelity: the photograph {name} cannot be had ({e})")
        sys.exit(0)
    photos.append((name, path))


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb01(c):
    c = np.clip(c, 0, 1)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


LEVELS = [0, 95, 135, 175, 215, 255]
SYSTEM = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
          (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255)]


def palette(i):
    if i < 16:
        return SYSTEM[i]
    if i < 232:
        n = i - 16
        return (LEVELS[n // 36], LEVELS[n // 6 % 6], LEVELS[n % 6])
    v = 8 + 10 * (i - 232)
    return (v, v, v)


DEFAULT_FG, DEFAULT_BG = (229, 229, 229), (0, 0, 0)
SGR = re.compile(r"\x1b\[([0-9;:?]*)([A-Za-z])")


def parse(text):
    """Cells (char, fg, bg) row by row."""
    rows, row = [], []
    fg, bg, rev = None, None, False
    i = 0
    while i < len(text):
        m = SGR.match(text, i)
        if m:
            if m.group(2) == "m" and not m.group(1).startswith("?"):
                p = [int(x) if x else 0 for x in re.split("[;:]", m.group(1))] if m.group(1) else [0]
                k = 0
                while k < len(p):
                    v = p[k]
                    if v == 0:
                        fg, bg, rev = None, None, False
                    elif v == 7:
                        rev = True
                    elif v == 27:
                        rev = False
                    elif v in (38, 48):
                        if p[k + 1] == 5:
                            c = palette(p[k + 2])
                            k += 2
                        else:
                            c = tuple(p[k + 2:k + 5])
                            k += 4
                        if v == 38:
                            fg = c
                        else:
                            bg = c
                    elif v == 39:
                        fg = None
                    elif v == 49:
                        bg = None
                    elif 30 <= v <= 37:
                        fg = SYSTEM[v - 30]
                    elif 40 <= v <= 47:
                        bg = SYSTEM[v - 40]
                    elif 90 <= v <= 97:
                        fg = SYSTEM[v - 90 + 8]
                    elif 100 <= v <= 107:
                        bg = SYSTEM[v - 100 + 8]
                    k += 1
            i = m.end()
            continue
        ch = text[i]
        i += 1
        if ch == "\n":
            rows.append(row)
            row = []
        elif ch == "\x1b" or ch == "\r":
            continue
        else:
            f, b = fg or DEFAULT_FG, bg or DEFAULT_BG
            if rev:
                f, b = b, f
            row.append((ch, f, b))
    if row:
        rows.append(row)
    rows = [r for r in rows if r]
    return rows


FONT = None
for f in ["/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"]:
    if os.path.exists(f):
        FONT = f
_masks = {}


def mask(ch):
    """Coverage of the foreground, CH x CW floats."""
    if ch in _masks:
        return _masks[ch]
    m = np.zeros((CH, CW))
    o = ord(ch)
    if ch == " ":
        pass
    elif o == 0x2580:
        m[:CH // 2] = 1
    elif 0x2581 <= o <= 0x2588:
        n = o - 0x2580
        m[CH - n * CH // 8:] = 1
    elif 0x2589 <= o <= 0x258F:
        n = 0x2590 - o  # 7..1 eighths from the left
        m[:, :n] = 1
    elif o == 0x2590:
        m[:, CW // 2:] = 1
    elif 0x2591 <= o <= 0x2593:
        m[:] = (o - 0x2590) / 4
    elif o == 0x2594:
        m[:CH // 8] = 1
    elif o == 0x2595:
        m[:, CW - 1:] = 1
    elif 0x2596 <= o <= 0x259F:
        quads = {0x2596: "l", 0x2597: "r", 0x2598: "L", 0x2599: "Llr", 0x259A: "Lr", 0x259B: "LRl",
                 0x259C: "LRr", 0x259D: "R", 0x259E: "Rl", 0x259F: "Rlr"}[o]
        h, w = CH // 2, CW // 2
        for q in quads:
            y = 0 if q in "LR" else h
            x = 0 if q in "Ll" else w
            m[y:y + h, x:x + w] = 1
    elif FONT:
        # Rasterised at 4x, then averaged down to the cell.
        s = 4
        font = ImageFont.truetype(FONT, size=CH * s)
        asc, desc = font.getmetrics()
        img = Image.new("L", (CW * s, CH * s), 0)
        d = ImageDraw.Draw(img)
        # Scale the line box to the cell: draw on a canvas of the font's own box, then resize.
        box_w = max(1, int(round(font.getlength(ch))) or CW * s)
        canvas = Image.new("L", (box_w, asc + desc), 0)
        ImageDraw.Draw(canvas).text((0, 0), ch, font=font, fill=255)
        img = canvas.resize((CW * s, CH * s), Image.BOX)
        del d
        a = np.asarray(img, dtype=np.float64) / 255.0
        m = a.reshape(CH, s, CW, s).mean(axis=(1, 3))
    else:
        m[:] = 0.25
    _masks[ch] = m
    return m


def render(rows):
    """Linear-light picture of the cells, CH x CW pixels a cell."""
    h, w = len(rows), max(len(r) for r in rows)
    img = np.zeros((h * CH, w * CW, 3))
    for y, r in enumerate(rows):
        for x, (ch, f, b) in enumerate(r):
            m = mask(ch)[..., None]
            img[y * CH:(y + 1) * CH, x * CW:(x + 1) * CW] = m * srgb_to_linear(f) + (1 - m) * srgb_to_linear(b)
    return img, w, h


def reference(path, w, h):
    lin = srgb_to_linear(np.asarray(Image.open(path).convert("RGB")))
    chans = [np.asarray(Image.fromarray(lin[..., c].astype(np.float32), mode="F").resize((w * CW, h * CH), Image.BOX))
             for c in range(3)]
    return np.stack(chans, -1).astype(np.float64)


def pool(img, by, bx):
    h, w, _ = img.shape
    return img.reshape(h // by, by, w // bx, bx, 3).mean(axis=(1, 3))


def delta(a, b):
    la, lb = rgb2lab(linear_to_srgb01(a)), rgb2lab(linear_to_srgb01(b))
    return float(deltaE_ciede2000(la, lb).mean()), float(deltaE_cie76(la, lb).mean())


def run(cmd, env):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {r.stderr.decode(errors='replace')[:200]}")
    return r.stdout


base = dict(os.environ)
for k in ("COLORTERM", "KITTY_WINDOW_ID", "TERM_PROGRAM"):
    base.pop(k, None)
base["EASEL_GRAPHICS"] = "halfblocks"
base.setdefault("TERM", "xterm-256color")
modes = {"256 colours": ({}, "256"), "truecolor": ({"COLORTERM": "truecolor"}, "full")}
# easel twice: with its default symbols (half-blocks) and with `[ui] symbols = "quadrant"`.
quadrant_config = os.path.join(work, "config-quadrant")
os.makedirs(os.path.join(quadrant_config, "easel"), exist_ok=True)
with open(os.path.join(quadrant_config, "easel", "config.toml"), "w") as f:
    f.write('[ui]\nsymbols = "quadrant"\n')
EASEL_TOOLS = {"easel view": "", "easel view (quadrant symbols)": ", [ui] symbols = quadrant"}
tools = {
    "easel view": ({}, lambda f, mode: [easel, "view", f, "--cols", "80", "--rows", "40"]),
    "easel view (quadrant symbols)": ({"XDG_CONFIG_HOME": quadrant_config},
                                      lambda f, mode: [easel, "view", f, "--cols", "80", "--rows", "40"]),
    "chafa (default symbols)": ({}, lambda f, mode: ["chafa", "--format", "symbols", "--size", "80x40", "-c", mode, f]),
}
results = {}
for mode, (extra, chafa_mode) in modes.items():
    for tool, (tool_env, cmd) in tools.items():
        env = dict(base, **extra, **tool_env)
        for name, path in photos:
            out = run(cmd(path, chafa_mode), env)
            rows = parse(out.decode("utf-8", errors="replace"))
            pic, w, h = render(rows)
            ref = reference(path, w, h)
            half = delta(pool(pic, CH // 2, CW), pool(ref, CH // 2, CW))
            fine = delta(pool(pic, CH // 4, CW // 2), pool(ref, CH // 4, CW // 2))
            results[(mode, tool, name)] = {"bytes": len(out), "cells": f"{w}x{h}", "half": half, "fine": fine}
            if show:
                print(f"{mode:12} {tool:30} {name:10} {w}x{h} {len(out):6} B  half-cell dE00 {half[0]:.2f} dE76 {half[1]:.2f}"
                      f"  fine dE00 {fine[0]:.2f} dE76 {fine[1]:.2f}")

names = [n for n, _ in photos]
with open(out_path, "a") as o:
    for mode in modes:
        c = [results[(mode, "chafa (default symbols)", n)] for n in names]
        for tool, suffix in EASEL_TOOLS.items():
            e = [results[(mode, tool, n)] for n in names]
            for grid, label in (("half", "half-cell grid"), ("fine", "2x4-per-cell grid")):
                for k, metric in ((0, "CIEDE2000"), (1, "CIE76")):
                    ev = sum(r[grid][k] for r in e) / len(e)
                    cv = sum(r[grid][k] for r in c) / len(c)
                    per = ", ".join(f"{n} {a[grid][k]:.1f} vs {b[grid][k]:.1f}" for n, a, b in zip(names, e, c))
                    o.write(json.dumps({"name": f"colour: mean {metric} ΔE of easel view at 80x40{suffix}, {mode}, {label} ({per})",
                                        "unit": "ΔE", "easel": ev, "baseline_name": "chafa default symbols", "baseline": cv,
                                        "ratio": ev / cv, "target": "≤ 1× (ΔE ≤ chafa's)", "samples": len(names)}) + "\n")
            eb = sum(r["bytes"] for r in e) / len(e)
            cb = sum(r["bytes"] for r in c) / len(c)
            o.write(json.dumps({"name": f"colour: bytes of easel view at 80x40{suffix}, {mode} (mean of {', '.join(names)})", "unit": "bytes",
                                "easel": eb, "baseline_name": "chafa default symbols", "baseline": cb, "ratio": eb / cb,
                                "target": "≤ 1× (bytes ≤ chafa's)", "samples": len(names)}) + "\n")
print("colour fidelity measured on " + ", ".join(names))
