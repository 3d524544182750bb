"""Child processes that die with their parent, however the parent ends.

``Supervised(argv, ...)`` is a ``subprocess.Popen`` whose program runs under a
small supervisor (``sim/supervisor.py``). The parent keeps the write end of
a pipe; the supervisor holds the read end and sees end-of-file when the parent
is gone, then stops the program (SIGTERM, SIGKILL after a grace period).

Why a pipe: the kernel closes a process's file descriptors however it ends —
exit, exception, SIGKILL, the OOM killer — so the end-of-file cannot be missed,
and the write end belongs to the whole process, not to one thread. Two
alternatives were rejected:

- ``PR_SET_PDEATHSIG`` set in the parent's pre-exec hook: the signal fires when
  the *thread* that forked exits, not the process. Brokers are started from
  worker threads (``asyncio.to_thread``), so an idle worker thread retiring
  would kill a healthy broker; and a pre-exec hook in a process that runs
  threads can deadlock (the child may inherit a lock another thread held).
- Starting every child from the main thread only, with that signal: the
  simulator stops and starts its broker from worker threads (the scenario steps
  ``broker: stop`` / ``start``), and every caller would have to keep to the rule;
  one that did not would silently lose the guarantee.

The supervisor is single-threaded, so there
``PR_SET_PDEATHSIG`` is safe and right: if the supervisor is killed, the
program is SIGKILLed with it. Signals sent to the supervisor (SIGTERM, SIGINT,
SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are passed on to the program, and it exits
the way the program did (same code, or killed by the same signal), so
``wait()`` and ``returncode`` read as if the program were the child. ``kill()``
SIGKILLs the program itself, and ``wait()`` returns once it is gone. The
supervisor reaps what it starts: no orphan is left for an init that may not
reap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SCRIPT = str(Path(__file__).resolve().with_name("supervisor.py"))
_PROC_CHILDREN = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()  # Linux


def supervised_argv(
    argv: Sequence[str], lifeline_fd: int, *, grace_s: float | None = None
) -> list[str]:
    """The command line that runs ``argv`` under the supervisor watching ``lifeline_fd``.

    ``-I -S``: the supervisor imports nothing but the standard library, whatever
    the environment says, and starts in a few milliseconds. ``grace_s``: how long
    an orphaned program has between SIGTERM and SIGKILL (the supervisor's default).
    """
    grace = [] if grace_s is None else [str(grace_s)]
    return [sys.executable, "-I", "-S", _SCRIPT, str(lifeline_fd), *grace, "--", *argv]


def program_pid(supervisor: int) -> int | None:
    """The PID of the program a running supervisor started (None before or after it runs)."""
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class Supervised(subprocess.Popen[Any]):
    """``subprocess.Popen`` for a program that must not outlive this process.

    Takes the same arguments, and ``grace_s`` (see ``supervised_argv``). ``pid`` is
    the supervisor's (a direct child); ``program_pid`` is the program's while it runs.
    """

    def __init__(self, args: Sequence[str], *, grace_s: float | None = None, **kwargs: Any) -> None:
        read_end, self._lifeline = os.pipe()  # both close on exec: only pass_fds passes one on
        self._finalizer: weakref.finalize[Any, Any] | None = None
        try:
            pass_fds = (*kwargs.pop("pass_fds", ()), read_end)
            argv = supervised_argv(args, read_end, grace_s=grace_s)
            super().__init__(argv, pass_fds=pass_fds, **kwargs)
        except BaseException:
            _close(self._lifeline)
            self._lifeline = -1
            raise
        finally:
            os.close(read_end)
        # A handle dropped without wait() still lets go of its program when collected.
        self._finalizer = weakref.finalize(self, _close, self._lifeline)

    @property
    def program_pid(self) -> int | None:
        """The supervised program's PID while it runs."""
        return program_pid(self.pid) if self.returncode is None else None

    def send_signal(self, sig: int) -> None:
        """Signals reach the program through the supervisor; SIGKILL goes to it directly."""
        if sig == signal.SIGKILL and self.returncode is None:
            program = self.program_pid
            if program is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(program, signal.SIGKILL)
                    return
            elif not _PROC_CHILDREN:
                # No /proc to find the program by: the supervisor stops it (SIGTERM, then
                # SIGKILL after the grace period); killing the supervisor would orphan it.
                self._release()
                return
        super().send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the program (no clean-up); the supervisor then exits the same way."""
        self.send_signal(signal.SIGKILL)

    def poll(self) -> int | None:
        code = super().poll()
        if code is not None:
            self._release()
        return code

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self._release()
        return code

    def release(self) -> None:
        """Drop the lifeline now: the supervisor stops the program as if this process had died."""
        self._release()

    def _release(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()  # closes the write end, once
        self._lifeline = -1


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


async def create_supervised_exec(
    program: str, *args: str, **kwargs: Any
) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec`` for a program that must not outlive this process.

    The lifeline closes when the returned ``Process`` is collected or this process
    ends. Its ``pid`` is the supervisor's: use ``kill_program`` for a SIGKILL that
    reaches the program itself.
    """
    read_end, write_end = os.pipe()
    try:
        pass_fds = (*kwargs.pop("pass_fds", ()), read_end)
        proc = await asyncio.create_subprocess_exec(
            *supervised_argv([program, *args], read_end), pass_fds=pass_fds, **kwargs
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    weakref.finalize(proc, _close, write_end)
    return proc


def kill_program(supervisor: int) -> None:
    """SIGKILL the program a supervisor runs (the supervisor itself if it has none yet)."""
    program = program_pid(supervisor)
    with contextlib.suppress(ProcessLookupError):
        os.kill(program if program is not None else supervisor, signal.SIGKILL)
