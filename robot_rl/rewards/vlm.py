"""``vlm_progress``: a generative vision-language model estimates task completion, GVL style.

The episode is subsampled to at most ``max_frames`` frames; the first is shown as the start
(0 %), the others in a shuffled order (so that the model cannot read progress off the
order), and the model is asked for each one's completion percentage. Answers are mapped
back to frame order and interpolated to every frame. Two backends: any OpenAI-compatible
chat endpoint (vLLM, a hosted API), with timeouts and retries with exponential backoff on
errors and time-outs; or a local transformers model. Both with a parse-failure policy
(``invalid``: the frames are marked not valid; ``retry``: ask again first) and an on-disk
cache keyed by model, prompt version, task and frames.

Slow (0.3–3 s per call): it runs in the relabeler on stored episodes, not in the actor.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from robot_rl.config import ConfigError
from robot_rl.files import atomic_write_text
from robot_rl.rewards.base import Frames, RewardModel, RewardOutput, calibrated, frame_count

log = logging.getLogger("robot_rl.rewards.vlm")

PROMPT_VERSION = "gvl-1"
ANSWER = re.compile(r"frame\s*(\d+)\s*[:=-]\s*(\d+(?:\.\d+)?)\s*%", re.IGNORECASE)


class VLMError(RuntimeError):
    """The endpoint could not be reached or kept failing after every retry."""


LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic that never leaves this machine."""
    if not host:
        return False
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """``url`` without any user:password@ part, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass(frozen=True)
class EndpointConfig:
    """Where the chat endpoint is and how to reach it; checked when built.

    The API key (read from ``$api_key_env``) is a secret: with one, ``base_url`` must be
    ``https://``, or plain ``http://`` to this machine itself (``localhost``, 127.0.0.0/8,
    ``::1``: a local vLLM, where the key never crosses a network). Plain ``http://`` to any
    other host with a key is refused (a :class:`ConfigError` naming ``reward_model.base_url``)
    unless ``allow_insecure`` (``reward_model.allow_insecure=true``) says the network is trusted.
    Without a key, ``http://`` is allowed anywhere: there is no secret to leak."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1 (vLLM) or a hosted API's
    model: str
    api_key_env: str | None = None  # the API key is read from this environment variable, never from config
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5  # doubled after every failed attempt
    allow_insecure: bool = False  # send the API key over plain http:// to another machine

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"invalid value for 'reward_model.base_url': {_shown(self.base_url)!r} is not an "
                              f"http(s)://host[:port]/... URL")
        if (parts.scheme == "http" and self.api_key_env and not self.allow_insecure
                and not is_loopback(parts.hostname)):
            raise ConfigError(f"invalid value for 'reward_model.base_url': {_shown(self.base_url)} is plain http and "
                              f"the API key (${self.api_key_env}) would cross the network in clear; use https://, "
                              f"or reward_model.allow_insecure=true on a trusted network")


class OpenAIChat:
    """The chat-completions protocol over HTTP, with timeouts and retries."""

    def __init__(self, config: EndpointConfig, sleep: Any = time.sleep):
        self.config, self.sleep = config, sleep
        self.model_name = config.model
        self.calls = 0

    def complete(self, content: list[dict[str, Any]]) -> str:
        c = self.config
        body = json.dumps({"model": c.model, "temperature": 0.0, "max_tokens": 512,
                           "messages": [{"role": "user", "content": content}]}).encode()
        headers = {"Content-Type": "application/json"}
        if c.api_key_env:
            key = os.environ.get(c.api_key_env)
            if not key:
                raise VLMError(f"the endpoint's API key is read from ${c.api_key_env}, which is not set")
            headers["Authorization"] = f"Bearer {key}"
        url = c.base_url.rstrip("/") + "/chat/completions"
        shown = _shown(url)
        delay, last = c.backoff_s, "no attempt"
        for attempt in range(c.retries + 1):
            self.calls += 1
            try:
                request = urllib.request.Request(url, body, headers, method="POST")
                with urllib.request.urlopen(request, timeout=c.timeout_s) as response:
                    reply = json.loads(response.read())
                return str(reply["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} {e.reason}"
                if e.code < 500 and e.code != 429:  # the request itself is wrong: retrying will not help
                    raise VLMError(f"{shown}: {last}: {e.read()[:200]!r}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
                last = f"not a chat-completions reply ({type(e).__name__}: {e})"
            if attempt < c.retries:
                log.warning("vlm endpoint %s failed (%s); retry %d/%d in %.1f s", shown, last, attempt + 1, c.retries,
                            delay)
                self.sleep(delay)
                delay *= 2
        raise VLMError(f"{shown}: no answer after {c.retries + 1} attempts (last: {last})")


class TransformersChat:
    """A local vision-language model (transformers ``AutoModelForImageTextToText``) from a folder
    or the local model cache, behind the same ``complete(content)`` as :class:`OpenAIChat`.
    Nothing is downloaded; greedy decoding, so the same frames get the same answer."""

    def __init__(self, name_or_path: str, max_new_tokens: int = 256, device: str = "cpu"):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from robot_rl.rewards.embedding import ModelNotFound

        try:
            self.model = AutoModelForImageTextToText.from_pretrained(name_or_path, local_files_only=True).to(device)
            self.processor = AutoProcessor.from_pretrained(name_or_path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"no vision-language model {name_or_path!r} in a local folder or the local model "
                                f"cache (nothing is downloaded at run time): {str(e).splitlines()[0]}") from None
        self.model.eval()
        self.model_name, self.max_new_tokens, self.device = name_or_path, max_new_tokens, device
        self.calls = 0
        self.last_prompt = ""

    def complete(self, content: list[dict[str, Any]]) -> str:
        import torch

        self.calls += 1
        images = [_decode_url(part["image_url"]["url"]) for part in content if part["type"] == "image_url"]
        parts = [{"type": "image"} if part["type"] == "image_url" else part for part in content]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True)
        self.last_prompt = prompt
        inputs = self.processor(text=prompt, images=images, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return str(self.processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))


def _decode_url(url: str) -> np.ndarray:
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _jpeg_url(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("could not encode a frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


class VLMProgress(RewardModel):
    name = "vlm_progress"
    inline = False

    def __init__(self, chat: OpenAIChat | TransformersChat, camera: str, max_frames: int = 16,
                 on_parse_failure: str = "invalid",
                 cache_dir: str | Path | None = None, seed: int = 0, done_at: float = 0.95):
        if on_parse_failure not in ("invalid", "retry"):
            raise ValueError(f"on_parse_failure must be 'invalid' or 'retry', got {on_parse_failure!r}")
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {max_frames}")
        self.chat, self.camera, self.max_frames = chat, camera, max_frames
        self.on_parse_failure, self.seed = on_parse_failure, seed
        self.done_at = done_at  # progress from which a frame counts as done (success_prob 0.5)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.parse_failures = 0

    def prompt(self, task: str, shown: int) -> str:
        return (f"You are shown frames of a robot doing the task: {task}. The first image is the start of the "
                f"episode (0% done). The next {shown} images are later frames in random order. For each of them, "
                f"estimate how much of the task is done, as a percentage from 0 to 100. Answer with one line per "
                f"image, exactly 'Frame <number>: <percent>%', numbering them 1 to {shown} in the order shown.")

    def score(self, frames: Frames, task: str) -> RewardOutput:
        n = frame_count(frames)
        if self.camera not in frames:
            raise ValueError(f"vlm_progress reads camera {self.camera!r}; the episode has {sorted(frames)}")
        images = frames[self.camera]
        picked = np.unique(np.linspace(0, n - 1, min(n, self.max_frames)).round().astype(int))
        later = picked[1:]
        order = np.random.default_rng(self.seed).permutation(len(later))  # shown position → index into later
        key = self._cache_key(task, images[picked], order)
        answers = self._cached(key)
        if answers is None:
            answers = self._ask(task, images[0], images[later[order]])
            if answers is not None:
                self._store(key, answers)
        progress = np.zeros(len(picked))
        valid_points = np.zeros(len(picked), bool)
        valid_points[0] = True
        if answers is not None:
            for shown, value in answers.items():
                progress[1 + order[shown]] = value / 100.0
                valid_points[1 + order[shown]] = True
        full = np.interp(np.arange(n), picked[valid_points], progress[valid_points]).astype(np.float32)
        valid = np.zeros(n, bool)
        valid[picked[valid_points]] = True
        if answers is not None:  # frames between two answered ones are judged by interpolation
            valid[picked[valid_points][0]:picked[valid_points][-1] + 1] = True
        return RewardOutput(full, calibrated(full, self.done_at), valid)

    def _ask(self, task: str, start: np.ndarray, shown: np.ndarray) -> dict[int, float] | None:
        content: list[dict[str, Any]] = [{"type": "text", "text": self.prompt(task, len(shown))},
                                         {"type": "image_url", "image_url": {"url": _jpeg_url(start)}}]
        content += [{"type": "image_url", "image_url": {"url": _jpeg_url(image)}} for image in shown]
        for attempt in range(2 if self.on_parse_failure == "retry" else 1):
            text = self.chat.complete(content)
            answers = {int(i) - 1: float(p) for i, p in ANSWER.findall(text) if 1 <= int(i) <= len(shown)}
            if len(answers) == len(shown) and all(0 <= p <= 100 for p in answers.values()):
                return answers
            self.parse_failures += 1
            log.warning("vlm_progress: could not parse the answer (attempt %d): %r", attempt + 1, text[:200])
        return None

    def _cache_key(self, task: str, images: np.ndarray, order: np.ndarray) -> str:
        digest = hashlib.sha256()
        for part in (self.chat.model_name, PROMPT_VERSION, task, order.tobytes(), images.tobytes()):
            digest.update(part.encode() if isinstance(part, str) else part)
        return digest.hexdigest()

    def _cached(self, key: str) -> dict[int, float] | None:
        if self.cache_dir is None or not (self.cache_dir / f"{key}.json").is_file():
            return None
        return {int(k): float(v) for k, v in json.loads((self.cache_dir / f"{key}.json").read_text()).items()}

    def _store(self, key: str, answers: dict[int, float]) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.cache_dir / f"{key}.json", json.dumps(answers))
