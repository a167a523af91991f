"""A fake outer terminal for the studio's tmux tests: attaches a tmux client in a pty of its
own (120x40) and answers the terminal queries that reach it (through tmux's passthrough) the
way kitty 0.35.2 does. It stands for "a user attaches from another terminal".

usage: fake_terminal.py TMUX_SOCKET_NAME SESSION SECONDS
"""
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time

socket, session, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm-256color"
    os.execvp("tmux", ["tmux", "-L", socket, "-f", "/dev/null", "attach", "-t", session])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 1200, 800))

QUERY = re.compile(rb"\x1b_G([^\x1b]*)\x1b\\|\x1b\[>0?q|\x1b\[0?c|\x1b\[16t|\x1b\[5n|\x1b\[>c")
pending = b""
end = time.time() + seconds
while time.time() < end:
    ready, _, _ = select.select([fd], [], [], 0.1)
    if not ready:
        continue
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    pending += data
    answer = b""
    while True:
        m = QUERY.search(pending)
        if not m:
            break
        q = m.group(0)
        if q.startswith(b"\x1b_G"):
            ident = re.search(rb"i=(\d+)", q)
            answer += b"\x1b_Gi=" + (ident.group(1) if ident else b"1") + b";OK\x1b\\"
        elif q.startswith(b"\x1b[>") and q.endswith(b"q"):
            answer += b"\x1bP>|kitty(0.35.2)\x1b\\"
        elif q in (b"\x1b[c", b"\x1b[0c"):
            answer += b"\x1b[?62;22c"
        elif q == b"\x1b[>c":
            answer += b"\x1b[>1;4000;29c"
        elif q == b"\x1b[16t":
            answer += b"\x1b[6;20;10t"
        elif q == b"\x1b[5n":
            answer += b"\x1b[0n"
        pending = pending[m.end():]
    if answer:
        os.write(fd, answer)
    # A query split across reads is completed by the next read.
    pending = pending[-200:]
os.kill(pid, 9)
