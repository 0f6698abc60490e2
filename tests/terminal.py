"""Run a command the way a person does: typed into an interactive bash (job control on) on a
pseudo-terminal. Captured test output never shows what a terminal does to a job (a process in
a background process group that touches the terminal is stopped by SIGTTOU); this does."""
from __future__ import annotations

import os
import pty
import re
import select
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Stands in for an ``ffmpeg`` executable on PATH (most video engineers have one): like
#: ffmpeg's terminal set-up, it sets the attributes of a terminal on stdin, which stops a
#: process outside the terminal's foreground process group.
FAKE_FFMPEG = """#!/usr/bin/env python3
import os, sys, termios
if os.isatty(0):
    termios.tcsetattr(0, termios.TCSANOW, termios.tcgetattr(0))
sys.exit(1)
"""


def ffmpeg_dir(tmp: Path) -> Path:
    """A folder holding an ``ffmpeg`` that touches the terminal as the real one does."""
    d = tmp / "bin"
    d.mkdir(exist_ok=True)
    exe = d / "ffmpeg"
    exe.write_text(FAKE_FFMPEG)
    exe.chmod(0o755)
    return d


@dataclass
class TerminalRun:
    status: int | None      # the command's exit status; None when it did not finish in time
    screen: str             # everything the terminal showed
    stopped: list[str]      # processes stopped by the terminal (state T) at the timeout


def stopped_processes(session: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "sid=,stat=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()
            if line.split() and line.split()[0] == str(session) and line.split()[1].startswith("T")]


def _read_until(fd: int, pattern: bytes, timeout: float) -> bytes:
    data, end = b"", time.monotonic() + timeout
    while time.monotonic() < end and not re.search(pattern, data):
        if select.select([fd], [], [], 0.2)[0]:
            data += os.read(fd, 65536)
    return data


def run_at_terminal(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 300,
                    ctrl_c_after: float | None = None, ctrl_c_when: str | None = None) -> TerminalRun:
    """Type ``command`` into ``bash -i`` on a new pseudo-terminal and wait for its status.

    ``ctrl_c_after`` presses Ctrl-C that many seconds after the command was typed;
    ``ctrl_c_when`` presses it once the screen shows that text."""
    # the prompt reports the last status (also after a command list that Ctrl-C cut short); it is
    # built by the shell, so the echoed command line never matches it
    env = {**os.environ, **(env or {}), "PS1": "$ ", "TERM": "xterm", "COLUMNS": "160", "LINES": "48",
           "PROMPT_COMMAND": 'echo "__DK""_STATUS=$?"'}
    pid, fd = pty.fork()
    if pid == 0:     # the child: a session leader whose controlling terminal is the pty
        # a person's shell starts with Ctrl-C at its default; the tests may run with SIGINT
        # ignored (started in the background by a script), and that would be inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(cwd)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
    screen = _read_until(fd, rb"__DK_STATUS=\d+", 30)        # the first prompt
    line = shlex.join(command) + "\n"
    os.write(fd, line.encode())
    screen = b""
    start, pressed, status = time.monotonic(), False, None
    try:
        while time.monotonic() - start < timeout:
            due = ctrl_c_after is not None and time.monotonic() - start >= ctrl_c_after
            shown = ctrl_c_when is not None and ctrl_c_when.encode() in screen
            if (due or shown) and not pressed:
                os.write(fd, b"\x03")
                pressed = True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
                m = re.search(rb"__DK_STATUS=(\d+)", screen)
                if m:
                    status = int(m.group(1))
                    break
        stopped = [] if status is not None else stopped_processes(pid)
    finally:
        os.write(fd, b"\x03exit\n") if status is None else os.write(fd, b"exit\n")
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
        if status is None:   # whatever the shell's jobs left (e.g. stopped workers) goes too
            subprocess.run(["pkill", "-KILL", "-s", str(pid)], check=False)
    return TerminalRun(status, screen.decode("utf-8", "replace"), stopped)
