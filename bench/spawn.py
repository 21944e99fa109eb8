"""Run one command from this small process and write its own wait4 rusage (peak RSS, CPU) as JSON to a file.

A child's ru_maxrss starts from its parent's peak when the parent spawns it with vfork (as subprocess and
posix_spawn do on Linux): the address space replaced at exec is the parent's. The benchmark holds the replay
recording (~100 MB), so a scanner it spawned directly reported the benchmark's own peak when that was larger.
This process is small, and it forks (a new process accounts from zero) and then execs the command.

    python -S bench/spawn.py USAGE.json COMMAND [ARG ...]
"""

import json
import os
import sys


def main() -> int:
    out, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - replaced by the command
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"exit_code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
                   "cpu_s": usage.ru_utime + usage.ru_stime}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
