"""The operator console: a small web server in the actor process.

Any browser on the lab network shows the live camera views, the episode and step, whether
the operator is intervening, the current episode's reward and progress, success and
intervention rates over recent episodes, and the learner's stats; buttons (and keyboard
shortcuts) send success, failure, reset, pause and e-stop. Those reach the actor as teleop
events: the console is a :class:`TeleopDevice` whose reads drain the clicks.

**Its own credential.** Every console has a key of its own (``console.token``, or a fresh
random one per start), never the actor⇄learner run token. The operator opens
:attr:`Console.login_url` (``http://host:port/?key=...``, printed once when the console
starts); that first visit sets a session cookie (HttpOnly, SameSite=Strict, derived from the
key) and redirects to the clean URL. Every request then needs that cookie, or the key
itself in the ``X-Robot-RL-Console-Key`` header (scripts); every POST must also carry an
``Origin`` that is the console's own ``http://<Host>`` on its port (a missing one is
refused), so no other site can press a button through the operator's browser. Refusals
are 403 with a short text. The same rules hold on localhost and on any other address.
The page is plain HTTP: off this machine, use it on a trusted network (or through an SSH
tunnel); the key opens this console alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import cv2
import numpy as np

from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
KEY_HEADER = "X-Robot-RL-Console-Key"
MIN_KEY_LENGTH = 16
REFUSED_LOGIN = (b"robot_rl console: open the URL with ?key=... that the console printed when it started "
                 b"(a new key each start unless console.token is set)")


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
    """The console's web server on ``host:port`` (port 0: any free one) with the key ``key``
    (None: a fresh random one; at least 16 characters)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, key: str | None = None, jpeg_quality: int = 85):
        if key is not None and len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"the console's key must be at least {MIN_KEY_LENGTH} characters")
        self.key = key or secrets.token_urlsafe(32)
        self.host = host
        self.jpeg_quality = jpeg_quality
        self.state = ConsoleState()
        self._frames: dict[str, bytes] = {}
        self._events: set[TeleopEvent] = set()
        self._lock = threading.Lock()
        self._page = resources.files("robot_rl.console").joinpath("page.html").read_text()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.cookie_name = f"robot_rl_console_{self.port}"  # cookies ignore ports: one name per console
        self._session = hmac.new(self.key.encode(), b"robot_rl console session", hashlib.sha256).hexdigest()
        self._thread = threading.Thread(target=self._server.serve_forever, name="console", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's clean URL (this machine's name when bound to every address)."""
        host = socket.gethostname() if self.host in WILDCARD_HOSTS else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def login_url(self) -> str:
        """The URL the operator opens once: it carries the key and sets the session cookie."""
        return f"{self.url}?key={quote(self.key, safe='')}"

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
    def _key_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.key.encode())

    def _has_session(self, headers: Any) -> bool:
        """The session cookie, or the key itself in the X-Robot-RL-Console-Key header."""
        if self._key_matches(headers.get(KEY_HEADER)):
            return True
        try:
            cookies = SimpleCookie(headers.get("Cookie") or "")
        except CookieError:
            return False
        morsel = cookies.get(self.cookie_name)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._session.encode())

    def _same_origin(self, headers: Any) -> bool:
        """``Origin`` is ``http://<Host>`` and Host names this console's port (DNS rebinding
        gets past this, but then the browser has no cookie for that name)."""
        origin, host = headers.get("Origin"), headers.get("Host")
        if not origin or not host:
            return False
        parsed = urlparse(origin)
        if parsed.scheme != "http" or parsed.netloc.lower() != host.lower() or parsed.path not in ("", "/"):
            return False
        return (parsed.port or 80) == self.port

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class of this console (the server makes one handler per request)."""
        return type("Handler", (_ConsoleHandler,), {"console": self})


class _ConsoleHandler(BaseHTTPRequestHandler):
    """The console's pages and buttons; :meth:`Console._handler` binds it to its console."""

    console: Console

    def log_message(self, *args: Any) -> None:  # keep the actor's terminal quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the key never leaves in a Referer
        self.send_header("X-Frame-Options", "DENY")  # no other page frames the buttons
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, why: bytes) -> None:
        self._send(HTTPStatus.FORBIDDEN, why, "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/" and "key" in parse_qs(url.query):
            self._log_in(parse_qs(url.query)["key"][0])
        elif not self.console._has_session(self.headers):
            self._refuse(REFUSED_LOGIN)
        else:
            self._get(url.path)

    def _log_in(self, key: str) -> None:
        """The operator's first visit, with the key: set the session cookie, redirect to the clean URL."""
        console = self.console
        if not console._key_matches(key):
            self._refuse(b"robot_rl console: wrong key")
            return
        cookie = f"{console.cookie_name}={console._session}; Path=/; HttpOnly; SameSite=Strict"
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})

    def _get(self, path: str) -> None:
        """The page, the state as JSON, or a camera's latest JPEG, for a request with a session."""
        console = self.console
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
        console = self.console
        if not console._has_session(self.headers):
            self._refuse(REFUSED_LOGIN)
            return
        if not console._same_origin(self.headers):
            self._refuse(b"robot_rl console: cross-origin (or Origin-less) request refused")
            return
        name = urlparse(self.path).path.removeprefix("/event/")
        try:
            event = TeleopEvent(name)
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, f"unknown event {name!r}".encode(), "text/plain")
            return
        with console._lock:
            console._events.add(event)
        self._send(HTTPStatus.OK, b"{}", "application/json")


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
