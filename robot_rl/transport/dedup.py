"""Which step batches the learner already delivered, so an actor's retries are never counted twice.

An actor retries a batch when it gets no acknowledgement, which also happens when the learner
did deliver it and only the reply was lost. Each actor session numbers its batches 1, 2, 3, ...
and sends one at a time, so "at or below the last delivered number" is exactly "already seen".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_delivered: int = 0


class BatchDeduplicator:
    """Delivers each (session, sequence) at most once; remembers the most recently active sessions."""

    def __init__(self, max_sessions: int = 4096) -> None:
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[Hashable, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def deliver_once(self, session: Hashable, sequence: int, deliver: Callable[[], None]) -> bool:
        """Run ``deliver`` unless this batch was delivered before; True if it ran.

        Batches of one session are serialised, so a retry that arrives while the first attempt
        is still being delivered waits for it and is then recognised as a duplicate. If
        ``deliver`` raises, the batch is not marked and a retry delivers it.
        """
        state = self._session(session)
        with state.lock:
            if sequence <= state.last_delivered:
                return False
            deliver()
            state.last_delivered = sequence
            return True

    def _session(self, key: Hashable) -> _Session:
        with self._lock:
            state = self._sessions.get(key)
            if state is None:
                state = self._sessions[key] = _Session()
                while len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(key)
            return state
