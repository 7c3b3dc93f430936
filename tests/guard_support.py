"""A starter process for the guard's tests: it starts the guard, then a child that ignores SIGTERM and has a
child of its own, writes their pids to a file and waits to be killed.

    python tests/guard_support.py PIDFILE         the starter
    python tests/guard_support.py --stubborn      the child: ignores SIGTERM, starts ``sleep``, sleeps
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 2.0


def stubborn() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "3600"])
    print(grandchild.pid, flush=True)
    time.sleep(3600)


def starter(pidfile: Path) -> None:
    from kepu.childproc import start_guard

    guard = start_guard(grace_s=GRACE_S)
    assert guard is not None
    child = subprocess.Popen([sys.executable, __file__, "--stubborn"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    tmp = pidfile.with_suffix(".part")
    tmp.write_text(json.dumps({"guard": guard.pid, "child": child.pid, "grandchild": grandchild}))
    tmp.rename(pidfile)
    time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1] == "--stubborn":
        stubborn()
    else:
        starter(Path(sys.argv[1]))
