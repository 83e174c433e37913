"""The operator console: a small web server in the actor process.

Any browser on the lab network shows the live camera views, the episode and step, whether
the operator is intervening, the current episode's reward and progress, success and
intervention rates over recent episodes, and the learner's stats; buttons (and keyboard
shortcuts) send success, failure, reset, pause and e-stop. Those reach the actor as teleop
events: the console is a :class:`TeleopDevice` whose reads drain the clicks.

It binds to localhost by default. Bound to any other address it requires the run's token
(``?token=...`` on the page URL; the page sends it with every request).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np

from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ConsoleState:
    """What the page shows; the actor updates it every step (thread-safe through the console)."""

    episode: int = 0
    step: int = 0
    intervention: bool = False
    paused: bool = False
    estop: bool = False
    rewards: list[float] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    recent_success: deque = field(default_factory=lambda: deque(maxlen=20))
    recent_intervention: deque = field(default_factory=lambda: deque(maxlen=20))
    learner: dict[str, Any] = field(default_factory=dict)
    safety_events: int = 0
    safety_reasons: Counter = field(default_factory=Counter)
    last_safety_event: str = ""

    def to_json(self) -> dict[str, Any]:
        def rate(values: deque) -> float | None:
            return float(np.mean(values)) if values else None

        return {"episode": self.episode, "step": self.step, "intervention": self.intervention,
                "paused": self.paused, "estop": self.estop, "rewards": self.rewards[-500:],
                "progress": self.progress[-500:], "success_rate": rate(self.recent_success),
                "intervention_rate": rate(self.recent_intervention), "learner": self.learner,
                "safety_events": self.safety_events, "safety_reasons": dict(self.safety_reasons.most_common()),
                "last_safety_event": self.last_safety_event}


class Console(TeleopDevice):
    def __init__(self, host: str = "127.0.0.1", port: int = 8080, token: str | None = None, jpeg_quality: int = 85):
        if host not in LOCAL_HOSTS and not token:
            raise ValueError(f"the console binds to {host}, beyond this machine: it needs the run's token")
        self.token = token if host not in LOCAL_HOSTS else None
        self.jpeg_quality = jpeg_quality
        self.state = ConsoleState()
        self._frames: dict[str, bytes] = {}
        self._events: set[TeleopEvent] = set()
        self._lock = threading.Lock()
        self._page = resources.files("robot_rl.console").joinpath("page.html").read_text()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="console", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ actor side
    def read(self) -> TeleopSample:
        with self._lock:
            events, self._events = frozenset(self._events), set()
        return TeleopSample(np.zeros(6), None, events, time.monotonic())

    def on_step(self, obs: dict[str, np.ndarray], episode: int, step: int, reward: float | None = None,
                info: dict[str, Any] | None = None) -> None:
        """Called by the actor after every reset and step (``reward=None``: a reset or a paused step)."""
        info = info or {}
        encoded = {}
        for name, image in obs.items():
            if image.ndim == 3 and image.dtype == np.uint8:
                ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                if ok:
                    encoded[name] = jpeg.tobytes()
        with self._lock:
            self._frames.update(encoded)
            state = self.state
            state.episode, state.step = episode, step
            state.intervention = bool(info.get("intervention", False))
            state.paused = bool(info.get("paused", False))
            state.estop = bool(info.get("estop", False))
            for event in info.get("safety_events", ()):
                state.safety_events += 1
                state.safety_reasons[event.reason] += 1
                state.last_safety_event = f"step {step}: {event.filter} {event.reason}"
            if step == 0:
                state.rewards, state.progress = [], []
            if reward is not None:
                state.rewards.append(float(reward))
                if "progress" in info:
                    state.progress.append(float(info["progress"]))

    def end_episode(self, success: bool, interventions: int, steps: int) -> None:
        with self._lock:
            self.state.recent_success.append(bool(success))
            self.state.recent_intervention.append(interventions / max(steps, 1))

    def set_learner_stats(self, **stats: Any) -> None:
        with self._lock:
            self.state.learner.update(stats)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ web side
    def _authorised(self, query: dict[str, list[str]], headers: Any) -> bool:
        if self.token is None:
            return True
        given = headers.get("X-Robot-RL-Token") or (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        console = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the actor's terminal quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _check(self) -> tuple[str, dict[str, list[str]]] | None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if not console._authorised(query, self.headers):
                    self._send(HTTPStatus.UNAUTHORIZED, b"token required", "text/plain")
                    return None
                return url.path, query

            def do_GET(self) -> None:
                checked = self._check()
                if checked is None:
                    return
                path, _ = checked
                if path == "/":
                    self._send(HTTPStatus.OK, console._page.encode(), "text/html; charset=utf-8")
                elif path == "/state":
                    with console._lock:
                        body = json.dumps({**console.state.to_json(), "cameras": sorted(console._frames)})
                    self._send(HTTPStatus.OK, body.encode(), "application/json")
                elif path.startswith("/frame/"):
                    with console._lock:
                        frame = console._frames.get(path[len("/frame/"):])
                    if frame is None:
                        self._send(HTTPStatus.NOT_FOUND, b"no such camera", "text/plain")
                    else:
                        self._send(HTTPStatus.OK, frame, "image/jpeg")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

            def do_POST(self) -> None:
                checked = self._check()
                if checked is None:
                    return
                path, _ = checked
                name = path.removeprefix("/event/")
                try:
                    event = TeleopEvent(name)
                except ValueError:
                    self._send(HTTPStatus.BAD_REQUEST, f"unknown event {name!r}".encode(), "text/plain")
                    return
                with console._lock:
                    console._events.add(event)
                self._send(HTTPStatus.OK, b"{}", "application/json")

        return Handler
