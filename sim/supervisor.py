"""The supervisor of ``sim.lifeline``: runs one program and stops it when its parent is gone.

Run as a script, ``python -I -S supervisor.py FD [GRACE_S] -- PROGRAM [ARG...]``:
FD is the read end of a pipe whose write end only the parent holds. On
end-of-file (the parent ended, however it ended) the program gets SIGTERM, and
SIGKILL after GRACE_S seconds (default ``GRACE_S``). Signals the supervisor
receives are passed on to the program; the supervisor exits the way the
program exits. The program's parent-death signal is SIGKILL, set here where
only one thread runs, so killing the supervisor kills the program too.

Only the standard library's smallest modules are imported: a supervisor starts
in a few milliseconds next to every broker and helper process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

GRACE_S = 5.0
"""How long an orphaned program has between SIGTERM and SIGKILL."""

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)

_PR_SET_PDEATHSIG = 1


def _exit_as(status: int) -> None:
    """Exit the way the program did: same exit code, or killed by the same signal."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        os._exit(code)
    sig = -code
    with contextlib.suppress(OSError, ValueError):  # SIGKILL keeps its default anyway
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the program's crash, not ours
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


def _start(argv: list[str], blocked: set[int | signal.Signals]) -> int:
    """Fork and exec ``argv`` with SIGKILL as its parent-death signal; its PID."""
    import ctypes

    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    me = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        for sig in (*FORWARDED, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        # One thread here: the parent-death signal is tied to the supervisor's only thread.
        # (Elsewhere than on Linux only the lifeline guards the program.)
        if prctl is not None and prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(1)
        if os.getppid() != me:
            os._exit(1)  # the supervisor is already gone
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.execvp(argv[0], argv)  # noqa: S606 - the parent's own argument list, no shell
    except BaseException as exc:  # reported on stderr; nothing may unwind past the fork
        with contextlib.suppress(OSError):
            os.write(2, f"cannot start {argv[0]}: {exc}\n".encode(errors="replace"))
    os._exit(127)


def supervise(lifeline: int, argv: list[str], grace_s: float = GRACE_S) -> None:
    """Run ``argv``; stop it when ``lifeline`` reaches end-of-file; exit as it exits."""
    os.set_inheritable(lifeline, False)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    # Each handled signal writes a byte there, so poll() returns on SIGCHLD and forwarded ones.
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)
    # Signals that arrive before the program exists are held, then passed on.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED, signal.SIGCHLD})
    child = _start(argv, blocked)

    def forward(sig: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    poller = select.poll()
    poller.register(lifeline, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    kill_at: float | None = None
    while True:
        timeout_ms = None if kill_at is None else max(0, int((kill_at - time.monotonic()) * 1000))
        ready = poller.poll(timeout_ms)
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            _exit_as(status)
        for fd, _ in ready:
            if fd == wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)
            elif fd == lifeline:
                try:
                    gone = not os.read(lifeline, 512)
                except OSError:
                    gone = True
                if gone:  # the parent ended: nobody but us will stop the program
                    poller.unregister(lifeline)
                    forward(signal.SIGTERM, None)
                    kill_at = time.monotonic() + grace_s
        if kill_at is not None and time.monotonic() >= kill_at:
            forward(signal.SIGKILL, None)
            kill_at = None


def main(args: list[str]) -> None:
    """``FD [GRACE_S] -- PROGRAM [ARG...]``."""
    try:
        split = args.index("--")
        fd, grace = int(args[0]), float(args[1]) if split == 2 else GRACE_S
        if split not in (1, 2) or split == len(args) - 1:
            raise ValueError
    except (ValueError, IndexError):
        sys.stderr.write("usage: supervisor.py FD [GRACE_S] -- PROGRAM [ARG...]\n")
        os._exit(2)
    supervise(fd, args[split + 1 :], grace)


if __name__ == "__main__":
    main(sys.argv[1:])
