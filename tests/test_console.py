"""The operator console in a real headless Chromium: the page loads, frames update, and a
click on "success" ends the episode with the label in the EpisodeStore."""

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robot_rl.console.server import Console
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.env.intervention import InterventionWrapper
from robot_rl.rl.actor import Actor
from robot_rl.rollout import FunctionPolicy
from robot_rl.safety import SafetyEvent
from robot_rl.teleop.device import TeleopEvent
from robot_rl.teleop.mapping import TeleopMapper


def post(url, token=None):
    request = urllib.request.Request(url, method="POST", headers={"X-Robot-RL-Token": token} if token else {})
    return urllib.request.urlopen(request, timeout=2).status


def test_a_clicked_label_reaches_the_actor_within_100_ms():
    console = Console(port=0)
    try:
        delays = []
        for _ in range(20):
            sent = time.perf_counter()
            post(f"http://127.0.0.1:{console.port}/event/success")
            while TeleopEvent.SUCCESS not in console.read().events:
                time.sleep(0.001)
            delays.append(time.perf_counter() - sent)
        assert max(delays) < 0.1
    finally:
        console.close()


def test_console_off_localhost_needs_the_token():
    with pytest.raises(ValueError, match="token"):
        Console(host="0.0.0.0", port=0)
    console = Console(host="0.0.0.0", port=0, token="s3cret")
    try:
        url = f"http://127.0.0.1:{console.port}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/state", timeout=2)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            post(url + "/event/estop", token="wrong")
        assert not console.read().events
        assert json.load(urllib.request.urlopen(url + "/state?token=s3cret", timeout=2))["episode"] == 0
        assert post(url + "/event/estop", token="s3cret") == 200
        assert console.read().events == {TeleopEvent.ESTOP}
    finally:
        console.close()


def test_the_console_shows_every_safety_event_by_reason():
    console = Console(port=0)
    try:
        events = [SafetyEvent("workspace", "position_limit"), SafetyEvent("step", "translation_limit")]
        console.on_step({}, episode=0, step=1, reward=0.0, info={"safety_events": events})
        console.on_step({}, episode=0, step=2, reward=0.0, info={"safety_events": events[:1]})
        state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{console.port}/state", timeout=2))
        assert state["safety_events"] == 3
        assert state["safety_reasons"] == {"position_limit": 2, "translation_limit": 1}
        assert state["last_safety_event"] == "step 2: workspace position_limit"
    finally:
        console.close()


@pytest.fixture
def chromium():
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def test_console_page_in_chromium_shows_live_frames_and_a_success_click_ends_the_episode(
        chromium, make_sim_env, tmp_path):
    """The actor runs in this thread (its renderer's GL context lives here); the browser
    session is driven from another."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    env = make_sim_env("task=reach", "task.max_steps=300", "cameras=sim64")
    console = Console(port=0)
    wrapped = InterventionWrapper(env, console, TeleopMapper(env.action_spec))
    store = EpisodeStore.create(tmp_path / "s.zarr", StoreSpec.from_spaces(env.observation_space, 4))
    wander = FunctionPolicy(lambda obs: np.array([0.0, 0.3 * np.sin(time.time()), 0.0, -1.0], np.float32))
    actor = Actor(wrapped, wander, store=store, rate_hz=10, console=console)
    seen: dict[str, object] = {}

    def operator() -> None:
        try:
            chromium.get(f"http://127.0.0.1:{console.port}/")
            wait = WebDriverWait(chromium, 15)
            wait.until(lambda d: d.execute_script(
                "const i = document.getElementById('cam-front'); return i && i.complete && i.naturalWidth > 0;"))
            first_step = int(chromium.find_element(By.ID, "step").text)
            first_src = chromium.find_element(By.ID, "cam-wrist").get_attribute("src")
            wait.until(lambda d: int(d.find_element(By.ID, "step").text) > first_step + 2)  # live state
            wait.until(lambda d: d.find_element(By.ID, "cam-wrist").get_attribute("src") != first_src)  # live frames
            seen["steps"] = (first_step, int(chromium.find_element(By.ID, "step").text))
            chromium.find_element(By.ID, "success").click()
        except Exception as e:  # handed to the test thread
            seen["error"] = e

    browser = threading.Thread(target=operator, daemon=True)
    browser.start()
    try:
        actor.run(max_episodes=1)
    finally:
        browser.join(timeout=20)
        console.close()
    assert "error" not in seen, seen.get("error")
    assert seen["steps"][1] > seen["steps"][0]
    episode = store.load_episode(0)
    assert episode["label"][-1] == 1 and episode["terminated"][-1]
    assert store.episodes()[0].success
    assert len(episode["label"]) < 300  # ended by the click, not the time limit
