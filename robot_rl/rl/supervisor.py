"""Child processes that are restarted when they die: what keeps `robot-rl train` running
through a learner that is OOM-killed or an actor that crashes.

A :class:`Supervised` child is started, watched from a thread, and started again after it
exits unasked, with exponential backoff, up to ``restarts`` times; then ``on_give_up`` is
called and :attr:`failure` holds a one-line reason. Each start builds its command anew, so
a restarted learner can be told the port its actors already dial.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("robot_rl.supervisor")


class RunFailed(RuntimeError):
    """A run that cannot go on; its message is one line (the command exits with code 1)."""


class Supervised:
    """One child process, restarted when it dies unasked (backoff 1, 2, 4, ... s, at most 30)."""

    def __init__(self, name: str, command: Callable[[], list[str]], log_path: Path, env: dict[str, str],
                 restarts: int, on_give_up: Callable[[], None] = lambda: None, output_to_log: bool = True):
        self.name, self.command, self.log_path, self.env = name, command, log_path, env
        self.restarts, self.on_give_up, self.output_to_log = restarts, on_give_up, output_to_log
        self.restarted = 0
        self.failure: str | None = None
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._log = open(log_path, "ab") if output_to_log else None
        self._watcher = threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True)

    def start(self) -> Supervised:
        self._spawn()
        self._watcher.start()
        return self

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self.process is None else self.process.pid

    def _spawn(self) -> None:
        out = self._log if self.output_to_log else None
        with self._lock:
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT if out else None)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self.process
            code = process.wait()
            if self._stopping.is_set():
                return
            if code == 0:  # finished its work (an actor at its budget)
                return
            if self.restarted >= self.restarts:
                deaths = self.restarted + 1
                self.failure = (f"the {self.name} died {deaths} time{'s' if deaths > 1 else ''} (last exit code "
                                f"{code}), {self.restarts} restarts allowed (train.restarts); see {self.log_path}")
                log.error(self.failure)
                self.on_give_up()
                return
            self.restarted += 1
            delay = min(2.0 ** (self.restarted - 1), 30.0)
            log.warning("the %s died (exit code %d); restarting it in %.0f s (restart %d of %d)", self.name, code,
                        delay, self.restarted, self.restarts)
            if self._stopping.wait(delay):
                return
            self._spawn()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the child is done for good (finished, given up on or stopped)."""
        self._watcher.join(timeout)
        with self._lock:
            return None if self._watcher.is_alive() or self.process is None else self.process.poll()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (then SIGKILL after ``timeout``), and no more restarts."""
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher.ident is not None:  # a child never started (train stopped early) has no watcher
            self._watcher.join(5.0)
        if self._log is not None:
            self._log.close()


def wait_for_file(path: Path, timeout: float, what: str, child: Supervised | None = None) -> None:
    """Wait until ``path`` exists (the ``what`` that writes it has started); :class:`RunFailed` if
    ``child`` (the process that should write it) gave up, or time ran out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child is not None and child.failure:
            raise RunFailed(child.failure)
        if time.monotonic() > deadline:
            where = f"see {child.log_path}" if child is not None else f"no {path}"
            raise RunFailed(f"the {what} did not start within {timeout:.0f} s; {where}")
        time.sleep(0.1)
