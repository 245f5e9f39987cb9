"""Is a process that ship started on this machine still running? (Lease holders, and runs
killed while writing an overlay, are recognised by host name and pid.)"""

from __future__ import annotations

import os
import socket


def dead_here(host: str, pid: int) -> bool:
    """True when `pid` on `host` is this machine's and has ended (or is a zombie nobody reaped)."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return False
