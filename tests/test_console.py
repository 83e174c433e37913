"""The operator console in a real headless Chromium: the page loads, frames update, and a
click on "success" ends the episode with the label in the EpisodeStore. And its credential:
a key of its own, a session cookie, and an Origin check on every POST, on any address."""

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robot_rl.console.server import KEY_HEADER, Console
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.intervention.mapping import TeleopMapper
from robot_rl.intervention.wrapper import InterventionWrapper
from robot_rl.rl.actor import Actor
from robot_rl.rl.rollout import FunctionPolicy
from robot_rl.safety import SafetyEvent
from robot_rl.teleop.device import TeleopEvent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECT = urllib.request.build_opener(_NoRedirect)


def request(console, path, method="GET", cookie=None, origin="same", key=None, host="127.0.0.1"):
    """(status, headers, body) of one request to ``console``; origin "same": its own."""
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if key:
        headers[KEY_HEADER] = key
    if origin == "same":
        origin = f"http://{host}:{console.port}"
    if origin:
        headers["Origin"] = origin
    req = urllib.request.Request(f"http://{host}:{console.port}{path}", method=method, headers=headers)
    try:
        with NO_REDIRECT.open(req, timeout=2) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def login(console) -> str:
    """The session cookie the ?key= URL sets, as a Cookie header."""
    status, headers, _ = request(console, f"/?key={console.key}", origin=None)
    assert status == 303 and headers["Location"] == "/"
    return headers["Set-Cookie"].split(";", 1)[0]


def test_a_clicked_label_reaches_the_actor_within_100_ms():
    console = Console(port=0)
    try:
        cookie = login(console)
        delays = []
        for _ in range(20):
            sent = time.perf_counter()
            assert request(console, "/event/success", "POST", cookie=cookie)[0] == 200
            while TeleopEvent.SUCCESS not in console.read().events:
                time.sleep(0.001)
            delays.append(time.perf_counter() - sent)
        assert max(delays) < 0.1
    finally:
        console.close()


def test_the_key_in_the_url_sets_an_httponly_strict_cookie_and_redirects_to_the_clean_url():
    console = Console(port=0)
    try:
        assert console.login_url.endswith(f":{console.port}/?key={console.key}")
        other = Console(port=0)
        other.close()
        assert len(console.key) >= 32 and other.key != console.key  # a fresh key each start
        status, headers, _ = request(console, f"/?key={console.key}", origin=None)
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert console.key not in cookie  # a session derived from the key, not the key itself
        session = cookie.split(";", 1)[0]
        for path in ("/", "/state"):
            assert request(console, path, origin=None)[0] == 403  # no cookie: nothing
            assert request(console, path, origin=None, cookie=session)[0] == 200
        assert request(console, "/state", origin=None, cookie=session.split("=")[0] + "=forged")[0] == 403
        assert request(console, "/state", origin=None, key=console.key)[0] == 200  # scripts: the header
        status, _, body = request(console, "/?key=wrong-key-wrong-key", origin=None)
        assert status == 403 and b"wrong key" in body
        status, headers, _ = request(console, "/", origin=None)
        assert status == 403 and headers["Referrer-Policy"] == "no-referrer"
    finally:
        console.close()


def test_a_post_without_the_cookie_is_refused():
    console = Console(port=0)
    try:
        status, _, body = request(console, "/event/estop", "POST")
        assert status == 403 and b"key" in body
        assert request(console, "/event/estop", "POST", key="not-the-key-of-this-console")[0] == 403
        assert not console.read().events
    finally:
        console.close()


def test_a_cross_origin_or_origin_less_post_is_refused():
    console = Console(port=0)
    try:
        cookie = login(console)
        for origin in ("http://evil.example", f"http://evil.example:{console.port}", "http://127.0.0.1:1",
                       f"https://127.0.0.1:{console.port}", "null", None):
            status, _, body = request(console, "/event/estop", "POST", cookie=cookie, origin=origin)
            assert status == 403 and b"Origin" in body, origin
        assert request(console, "/event/estop", "POST", key=console.key, origin="http://evil.example")[0] == 403
        assert not console.read().events
        assert request(console, "/event/estop", "POST", cookie=cookie)[0] == 200
        assert console.read().events == {TeleopEvent.ESTOP}
    finally:
        console.close()


def test_the_same_rules_on_every_address():
    with pytest.raises(ValueError, match="16 characters"):
        Console(host="0.0.0.0", port=0, key="short")
    console = Console(host="0.0.0.0", port=0, key="a-console-key-of-this-run")
    try:
        assert console.login_url.endswith("/?key=a-console-key-of-this-run")
        assert request(console, "/state", origin=None)[0] == 403
        assert request(console, "/event/estop", "POST")[0] == 403
        cookie = login(console)
        assert json.loads(request(console, "/state", cookie=cookie, origin=None)[2])["episode"] == 0
        assert request(console, "/event/estop", "POST", cookie=cookie)[0] == 200
        assert console.read().events == {TeleopEvent.ESTOP}
    finally:
        console.close()


def test_with_operator_gives_the_console_its_own_key_and_prints_its_url_once(make_sim_env, capsys, monkeypatch):
    from robot_rl.config import ConfigError
    from robot_rl.intervention.factory import CONSOLE_TOKEN_ENV, with_operator
    from robot_rl.schema import load_config

    monkeypatch.delenv(CONSOLE_TOKEN_ENV, raising=False)
    env = make_sim_env("task=reach", "cameras=sim64", with_cameras=False)
    run_token = "the-actor-learner-run-token"
    for processes in ("1", "2"):  # one process (train, record) and the actor of two, on any address
        cfg = load_config(["console.enabled=true", "console.host=0.0.0.0", "console.port=0",
                           f"train.processes={processes}", f"learner.token={run_token}"], name="train")
        _, console = with_operator(env, cfg, token=run_token if processes == "2" else None)
        try:
            err = capsys.readouterr().err
            assert err.count(console.login_url) == 1 and run_token not in err
            assert run_token not in console.key and len(console.key) >= 32
            assert request(console, "/state", origin=None, key=run_token)[0] == 403
        finally:
            console.close()
    cfg = load_config(["console.enabled=true", "console.port=0", "console.token=an-operator-chosen-key"],
                      name="train")
    _, console = with_operator(env, cfg)
    console.close()
    assert console.key == "an-operator-chosen-key"
    monkeypatch.setenv(CONSOLE_TOKEN_ENV, "a-key-from-the-environment")
    _, console = with_operator(env, load_config(["console.enabled=true", "console.port=0"], name="train"))
    console.close()
    assert console.key == "a-key-from-the-environment"
    with pytest.raises(ConfigError, match=r"console\.token"):
        with_operator(env, load_config(["console.enabled=true", "console.port=0", f"console.token={run_token}",
                                        f"learner.token={run_token}"], name="train"))


def test_the_console_shows_every_safety_event_by_reason():
    console = Console(port=0)
    try:
        events = [SafetyEvent("workspace", "position_limit"), SafetyEvent("step", "translation_limit")]
        console.on_step({}, episode=0, step=1, reward=0.0, info={"safety_events": events})
        console.on_step({}, episode=0, step=2, reward=0.0, info={"safety_events": events[:1]})
        state = json.loads(request(console, "/state", origin=None, cookie=login(console))[2])
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
            chromium.get(console.login_url.replace(f"//{console.host}:", "//127.0.0.1:"))
            wait = WebDriverWait(chromium, 15)
            seen["url"] = chromium.current_url  # redirected to the clean URL, the session in a cookie
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
    assert seen["url"] == f"http://127.0.0.1:{console.port}/"
    episode = store.load_episode(0)
    assert episode["label"][-1] == 1 and episode["terminated"][-1]
    assert store.episodes()[0].success
    assert len(episode["label"]) < 300  # ended by the click, not the time limit
