"""vlm_progress against a loopback server that speaks the OpenAI chat-completions protocol (a
test double of a VLM endpoint: it reads each image's brightness as the task's progress), with
slow, failing and malformed replies."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from robot_rl.rewards.metrics import voc
from robot_rl.rewards.vlm import EndpointConfig, OpenAIChat, VLMError, VLMProgress


class VLMDouble:
    """Answers each request according to the next entry of ``script`` (then "ok" for ever):
    ok, slow, error500, error400, malformed, not_json."""

    def __init__(self):
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                double.requests.append(body)
                double.headers.append(dict(self.headers))
                mode = double.script.pop(0) if double.script else "ok"
                if mode == "slow":
                    time.sleep(0.6)
                if mode in ("error500", "error400"):
                    self.send_response(int(mode[-3:]))
                    self.end_headers()
                    self.wfile.write(b"nope")
                    return
                text = double.answer(body) if mode in ("ok", "slow") else "It looks about half done to me."
                payload = b"{not json" if mode == "not_json" else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def answer(body) -> str:
        images = [part["image_url"]["url"] for part in body["messages"][0]["content"] if part["type"] == "image_url"]
        lines = []
        for i, url in enumerate(images[1:], start=1):  # the first is the start frame
            data = base64.b64decode(url.split(",", 1)[1])
            brightness = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).mean()
            lines.append(f"Frame {i}: {np.clip((brightness - 20) / 2, 0, 100):.0f}%")
        return "\n".join(lines)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vlm():
    double = VLMDouble()
    yield double
    double.close()


def episode(length=30, reverse=False):
    level = np.linspace(20, 220, length)[::-1 if reverse else 1]
    return {"front": np.broadcast_to(level[:, None, None, None], (length, 24, 24, 3)).astype(np.uint8)}


def reward_model(vlm, tmp_path=None, **kwargs):
    chat = OpenAIChat(EndpointConfig(vlm.url, "tiny-vlm", timeout_s=0.3, retries=kwargs.pop("retries", 2),
                                     api_key_env=kwargs.pop("api_key_env", None)), sleep=lambda s: None)
    return VLMProgress(chat, "front", max_frames=10, cache_dir=tmp_path, **kwargs)


def test_progress_follows_the_frames_whatever_order_they_were_shown_in(vlm, tmp_path):
    c = reward_model(vlm, tmp_path)
    out = c.score(episode(), "stack the cups")
    assert out.valid.all() and voc(out.progress) > 0.95
    assert out.progress[-1] == pytest.approx(1.0, abs=0.02) and out.progress[0] == 0.0
    shown = [p for p in vlm.requests[0]["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(shown) == 10 and "stack the cups" in vlm.requests[0]["messages"][0]["content"][0]["text"]
    backwards = c.score(episode(reverse=True), "stack the cups").progress
    # the start is 0 % by the prompt; from the next frame shown (3 of 30) on, progress falls
    assert backwards[0] == 0.0 and voc(backwards[3:]) < -0.95


def test_half_done_is_not_done(vlm):
    out = reward_model(vlm).score(episode(), "t")
    done = out.success_prob >= 0.5
    assert not done[out.progress < 0.95].any() and done[out.progress >= 0.95].all()


def test_answers_are_cached_by_model_prompt_task_and_frames(vlm, tmp_path):
    c = reward_model(vlm, tmp_path)
    first = c.score(episode(), "stack the cups")
    again = reward_model(vlm, tmp_path).score(episode(), "stack the cups")  # a new reward model, the same cache
    assert len(vlm.requests) == 1
    np.testing.assert_array_equal(first.progress, again.progress)
    c.score(episode(), "open the drawer")
    assert len(vlm.requests) == 2


def test_slow_and_failing_replies_are_retried_with_backoff(vlm):
    vlm.script = ["slow", "error500"]
    waits = []
    c = reward_model(vlm)
    c.chat.sleep = waits.append
    assert c.score(episode(), "t").valid.all()
    assert c.chat.calls == 3 and waits == [0.5, 1.0]  # exponential backoff


def test_an_endpoint_that_keeps_failing_or_refuses_the_request_is_one_clear_error(vlm):
    vlm.script = ["error500"] * 3
    with pytest.raises(VLMError, match=r"no answer after 3 attempts .*HTTP 500"):
        reward_model(vlm).score(episode(), "t")
    vlm.script = ["error400"]
    c = reward_model(vlm)
    with pytest.raises(VLMError, match="HTTP 400"):
        c.score(episode(), "t")
    assert c.chat.calls == 1  # a bad request is not retried
    vlm.script = ["not_json"] * 3
    with pytest.raises(VLMError, match="not a chat-completions reply"):
        reward_model(vlm).score(episode(), "t")


def test_unparsable_answers_mark_the_frames_invalid_or_are_asked_again(vlm):
    vlm.script = ["malformed"]
    c = reward_model(vlm)
    out = c.score(episode(), "t")
    assert c.parse_failures == 1 and out.valid.sum() == 1 and out.valid[0]  # only the start frame is known
    vlm.script = ["malformed"]
    c = reward_model(vlm, on_parse_failure="retry")
    assert c.score(episode(), "t").valid.all() and c.parse_failures == 1


def test_the_api_key_comes_from_the_environment(vlm, monkeypatch):
    with pytest.raises(VLMError, match=r"\$VLM_KEY"):
        reward_model(vlm, api_key_env="VLM_KEY").score(episode(), "t")
    monkeypatch.setenv("VLM_KEY", "sk-test")
    reward_model(vlm, api_key_env="VLM_KEY").score(episode(), "t")
    assert vlm.headers[-1]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000/v1", "http://vlm.lab:8000/v1", "http://user:pw@gpu-box/v1"])
def test_an_api_key_over_plain_http_to_another_host_is_refused_unless_allowed(url):
    from robot_rl.config import ConfigError

    with pytest.raises(ConfigError, match=r"'reward_model.base_url'.*reward_model.allow_insecure=true") as refused:
        EndpointConfig(url, "m", api_key_env="VLM_KEY")
    assert len(str(refused.value).splitlines()) == 1 and "pw" not in str(refused.value)
    EndpointConfig(url, "m", api_key_env="VLM_KEY", allow_insecure=True)  # a trusted network, said so
    EndpointConfig(url, "m")  # no key, no secret to leak
    EndpointConfig(url.replace("http://", "https://"), "m", api_key_env="VLM_KEY")
    for loopback in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                     "http://127.0.0.2/v1"):  # the key never leaves this machine
        EndpointConfig(loopback, "m", api_key_env="VLM_KEY")
    with pytest.raises(ConfigError, match=r"'reward_model\.base_url'"):
        EndpointConfig("ftp://vlm.lab/v1", "m")


def test_the_config_refuses_a_key_over_http_at_build_time(monkeypatch):
    from robot_rl.config import ConfigError
    from robot_rl.rewards.factory import make_reward_model
    from robot_rl.schema import load_config

    monkeypatch.setenv("VLM_KEY", "sk-test")
    vlm_cfg = ["cameras=sim64", "reward_model.name=vlm_progress", "reward_model.base_url=http://vlm.lab:8000/v1",
               "reward_model.model=m", "reward_model.api_key_env=VLM_KEY", "reward_model.camera=front"]
    with pytest.raises(ConfigError, match=r"reward_model\.allow_insecure"):
        make_reward_model(load_config(vlm_cfg, name="train"))
    assert load_config([*vlm_cfg, "reward_model.allow_insecure=true"], name="train").reward_model.allow_insecure


def test_reward_model_allow_insecure_reaches_the_endpoint(monkeypatch):
    from robot_rl.rewards.factory import make_reward_model
    from robot_rl.schema import load_config

    monkeypatch.setenv("VLM_KEY", "sk-test")
    cfg = load_config(["cameras=sim64", "reward_model.name=vlm_progress",
                       "reward_model.base_url=http://vlm.lab:8000/v1",
                       "reward_model.model=m", "reward_model.api_key_env=VLM_KEY", "reward_model.camera=front",
                       "reward_model.allow_insecure=true"], name="train")
    assert make_reward_model(cfg).chat.config.allow_insecure


def test_reward_model_eval_judges_a_vlm_endpoint_and_training_leaves_it_to_the_relabeler(vlm, tmp_path, capsys,
                                                                                make_sim_env):
    from robot_rl.cli import main
    from robot_rl.rewards.training import relabeler_for, with_reward_model
    from robot_rl.schema import load_config

    cams = ["cameras=sim64", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
            "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]"]
    store = tmp_path / "s.zarr"
    assert main(["rollout", "task=pick_cube", *cams, "policy=expert", "episodes=2", f"record={store}",
                 "logging.progress_bar=false", f"run_dir={tmp_path / 'a'}"]) == 0
    vlm_cfg = ["reward_model.name=vlm_progress", f"reward_model.base_url={vlm.url}", "reward_model.model=tiny-vlm",
               "reward_model.camera=front", "reward_model.timeout_s=5"]
    capsys.readouterr()
    assert main(["reward-model", "eval", "--json", "task=pick_cube", *cams, *vlm_cfg, f"data={store}",
                 f"run_dir={tmp_path / 'b'}"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and summary["invalid_frame_rate"] == 0.0
    assert len(vlm.requests) == 4  # each episode forwards and reversed
    cfg = load_config(["task=pick_cube", *cams, *vlm_cfg], name="train")
    env = make_sim_env("task=pick_cube", *cams)
    assert with_reward_model(env, cfg) is env  # too slow for the actor: the learner relabels instead
    relabeler = relabeler_for(cfg)
    assert relabeler is not None
    relabeler.close()


def test_the_learner_takes_episodes_once_the_relabeler_has_rewarded_them(vlm, tmp_path, make_sim_env):
    from robot_rl.data import EpisodeStore
    from robot_rl.rewards.composer import compose_rewards
    from robot_rl.rewards.relabel import relabel_episode
    from robot_rl.rewards.training import relabeler_for, reward_config
    from robot_rl.rl.assembly import make_learner, record_demos
    from robot_rl.schema import load_config

    cams = ["cameras=sim64", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
            "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]"]
    cfg = load_config(["task=pick_cube", *cams, "reward_model.name=vlm_progress", f"reward_model.base_url={vlm.url}",
                       "reward_model.model=tiny-vlm", "reward_model.camera=front", "reward_model.retries=3",
                       "agent.hidden=[32,32]",
                       "agent.encoder_features=16", "learner.batch_size=8"], name="train")
    plain = load_config(["task=pick_cube", *cams], name="train")
    demos = record_demos(plain, tmp_path / "demos.zarr", 2)  # the sim's own rewards
    vlm.script = ["error500"] * 4  # the first episode's reward model call fails for good: it keeps its own rewards
    relabeler = relabeler_for(cfg)
    relabeler.reward_model.chat.sleep = lambda seconds: None  # no real waiting between the retries
    learner = make_learner(cfg, make_sim_env("task=pick_cube", *cams), tmp_path / "learner", [demos],
                           relabeler=relabeler)
    try:
        assert relabeler.wait(30) and relabeler.failures == 1 and relabeler.relabeled == 1
        with EpisodeStore.open(demos) as store:
            episodes = [store.load_episode(i) for i in range(2)]
        kept = episodes[0]
        rewarded = relabel_episode(episodes[1], relabeler.reward_model, "pick_cube", list(cfg.cameras),
                                   reward_config(cfg))
        assert len(learner.demo) == len(kept["reward"]) + len(rewarded["reward"])
        out = relabeler.reward_model.score({n: episodes[1]["obs"][n] for n in cfg.cameras}, "pick_cube")
        np.testing.assert_allclose(rewarded["reward"], compose_rewards(
            out, reward_config(cfg), succeeded=episodes[1]["terminated"]).rewards)
        assert episodes[1]["terminated"][-1] and rewarded["terminated"][-1]  # the sim's success stays one,
        assert rewarded["reward"][-1] > 0.5  # and is paid the success reward
        assert not np.allclose(rewarded["reward"], episodes[1]["reward"][:len(rewarded["reward"])])
    finally:
        learner.close()


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """A 2-layer Llava (CLIP vision, Llama text) with a word-level tokenizer, saved as a folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    words = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "Frame", "1", "2", "3", ":", "%", "10", "50", "90"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>",
                                        extra_special_tokens={"image_token": "<image>"})
    template = ("{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
                "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}")
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=template,
        num_additional_image_tokens=1)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = LlavaConfig(vision_config=CLIPVisionConfig(image_size=32, patch_size=8, **small),
                         text_config=LlamaConfig(vocab_size=len(vocab), num_key_value_heads=2,
                                                 max_position_embeddings=1024, **small),
                         image_token_index=vocab["<image>"], vision_feature_select_strategy="default",
                         vision_feature_layer=-1)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("llava")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_a_local_transformers_vlm_is_the_other_backend(tiny_llava, tmp_path):
    from robot_rl.config import ConfigError
    from robot_rl.rewards.factory import make_reward_model
    from robot_rl.rewards.vlm import TransformersChat
    from robot_rl.schema import load_config

    cfg = load_config(["cameras=sim64", "reward_model.name=vlm_progress", f"reward_model.local_model={tiny_llava}",
                       "reward_model.camera=front", "reward_model.max_frames=4"], name="train")
    reward_model = make_reward_model(cfg)
    assert isinstance(reward_model.chat, TransformersChat)
    frames = {"front": np.repeat(np.linspace(20, 220, 8)[:, None, None, None], 32, 1).repeat(32, 2).repeat(3, 3)
              .astype(np.uint8)}
    out = reward_model.score(frames, "stack the cups")
    assert reward_model.chat.calls == 1 and reward_model.chat.last_prompt.count("<image>") == 4  # the start and 3 shown
    assert "stack the cups" in reward_model.chat.last_prompt
    # an untrained model answers nonsense: the frames it was asked about are not judged
    assert reward_model.parse_failures == 1 and out.valid.sum() == 1
    with pytest.raises(ConfigError, match="no vision-language model"):
        make_reward_model(load_config(["reward_model.name=vlm_progress",
                                       f"reward_model.local_model={tmp_path / 'none'}"],
                                name="train"))
