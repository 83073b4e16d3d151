"""`zoo-dirs explore`: the explorer's logic directly, then the real page in a real headless Chromium
(Debian's chromium and chromium-driver, driven by Selenium) against a real `zoo-dirs explore` process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.explore import Explorer
from ganzoo_directions.interfaces import Option
from ganzoo_directions.runs import generator_for

from .helpers import invoke, wait_until

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def explorer_of(run: Path, **kwargs) -> Explorer:
    dset = DirectionSet.load(run)
    generator = generator_for(dset)
    return Explorer(dset, lambda changed: generator, path=run / "directions.safetensors", **kwargs)


def pixels(image) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.array(image, dtype=np.float32))


def test_sliders_move_the_image_and_out_of_range_values_are_clamped(run):
    explorer = explorer_of(run, sliders=4, magnitude=3.0)
    assert explorer.directions == DirectionSet.load(run).ranked()[:4]  # strongest first
    still = pixels(explorer.render(0, 1, [0, 0, 0, 0]))
    moved = pixels(explorer.render(0, 1, [3.0, 0, 0, 0]))
    assert (moved - still).abs().mean() > 1
    assert torch.equal(pixels(explorer.render(0, 1, [1e9])), moved)  # clamped to +3
    for junk in (float("nan"), float("inf"), "abc", None):
        assert torch.equal(pixels(explorer.render(0, 1, [junk])), still)  # not a number: 0
    two = explorer.render(0, 2, [])
    assert two.width == 2 * explorer.render(0, 1, []).width  # samples side by side
    assert explorer.render(0, 10**6, []).width == 8 * explorer.render(0, 1, []).width  # at most 8
    assert len(explorer.strips(0)) == 4
    for seed in (-3, float("nan"), "x", None, 2**70):  # what a page could send: never an error
        explorer.render(seed, "2", [])


def test_labels_from_the_explorer_are_checked_and_never_lost(run):
    first, second = explorer_of(run), explorer_of(run)  # two explorers on one file
    assert first.save_label(0, "zoom") == "saved: direction 0 is 'zoom'"
    assert second.save_label(1, "hue") == "saved: direction 1 is 'hue'"
    assert DirectionSet.load(run).labels == {0: "zoom", 1: "hue"}  # the second kept the first's
    assert "already direction 0's" in second.save_label(2, "Zoom")
    assert "at most 60" in first.save_label(2, "x" * 100)
    assert first.save_label(0, "") == "removed the label of direction 0"
    assert DirectionSet.load(run).labels == {1: "hue"}
    read_only = Explorer(DirectionSet.load(run), lambda changed: generator_for(DirectionSet.load(run)))
    assert "read-only" in read_only.save_label(0, "zoom")


def test_live_options_rebuild_the_generator_once_per_value():
    from ganzoo_directions_sprites.sprites import SpritesGenerator

    class Dimmable(SpritesGenerator):
        name = "dimmable"
        live_options = ("brightness",)
        options = {**SpritesGenerator.options, "brightness": Option(1.0, "gain", minimum=0.1, maximum=1.0)}

        def render(self, latents):
            return super().render(latents) * self.config["brightness"]

    built = []

    def build(changed):
        built.append(changed)
        return Dimmable(image_size=16, **changed)

    dset = DirectionSet(torch.nn.functional.normalize(torch.randn(3, 8), dim=1))
    explorer = Explorer(dset, build, sliders=3)
    assert explorer.defaults == {"brightness": 1.0}
    bright = pixels(explorer.render(0, 1, []))
    dim = pixels(explorer.render(0, 1, [], {"brightness": 0.5}))
    assert (bright - dim).abs().mean() > 1
    explorer.render(0, 1, [], {"brightness": 0.5})
    assert built == [{}, {"brightness": 0.5}]  # cached


def test_explore_without_gradio_is_one_line(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the extra were not installed
    result = invoke("explore", str(run))
    assert result.returncode == 1
    assert 'pip install "ganzoo-directions[explore]"' in result.stderr and "Traceback" not in result.stderr


def test_explore_refuses_a_set_for_other_weights(run):
    dset = DirectionSet.load(run)
    dset.spec["generator"]["fingerprint"] = "0" * 64
    dset.save(run)
    result = invoke("explore", str(run))
    assert result.returncode == 1 and "direction set was made for weights 000000000000" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_page_in_a_real_browser(run, tmp_path):
    """Loads, a slider moves the image, an out-of-range value does not break it, a label typed in
    the page lands in the file. GANZOO_SCREENSHOT=path keeps the browser's screenshot (the README's)."""
    pytest.importorskip("gradio", reason="the [explore] extra is not installed")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port = free_port()
    exe = Path(sys.executable).with_name("zoo-dirs")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    server = subprocess.Popen(
        [str(exe), "explore", str(run), "--port", str(port), "--sliders", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1100"):
        options.add_argument(argument)
    browser = None
    try:
        assert wait_until(up, timeout=120), server.stdout.read() if server.poll() is not None else "no page"
        browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        browser.get(url)
        k = DirectionSet.load(run).ranked()[0]
        slider = f"#slider-{k} input[type=range]"
        assert wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, slider), timeout=60)
        assert wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#image img"), timeout=60)

        def image():
            return browser.find_element(By.CSS_SELECTOR, "#image img")

        before_src, before = image().get_attribute("src"), image().screenshot_as_png
        browser.execute_script(
            "const s = arguments[0]; s.value = arguments[1];"
            "s.dispatchEvent(new Event('input', {bubbles: true}));"
            "s.dispatchEvent(new Event('change', {bubbles: true}));",
            browser.find_element(By.CSS_SELECTOR, slider),
            3,
        )
        assert wait_until(lambda: image().get_attribute("src") != before_src, timeout=60)
        from io import BytesIO

        from PIL import Image

        after = image().screenshot_as_png
        a, b = (pixels(Image.open(BytesIO(png)).convert("RGB")) for png in (before, after))
        assert a.shape != b.shape or (a - b).abs().mean() > 1  # the displayed image changed

        number = browser.find_element(By.CSS_SELECTOR, f"#slider-{k} input[type=number]")
        number.clear()
        number.send_keys("999", Keys.ENTER)  # out of range: clamped by the page or the server
        moved_src = image().get_attribute("src")
        wait_until(lambda: image().get_attribute("src") != moved_src, timeout=10)
        assert server.poll() is None and up()  # the server is still there

        box = browser.find_element(By.CSS_SELECTOR, f"#label-{k} textarea, #label-{k} input")
        box.clear()
        box.send_keys("background", Keys.ENTER)  # the shipped GAN's strongest SeFa direction
        assert wait_until(lambda: DirectionSet.load(run).labels.get(k) == "background", timeout=60)
        assert wait_until(lambda: "saved" in browser.find_element(By.CSS_SELECTOR, "#status").text, 30)
        shot = tmp_path / "explore.png"
        browser.save_screenshot(str(shot))
        if os.environ.get("GANZOO_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["GANZOO_SCREENSHOT"])
    finally:
        if browser is not None:
            browser.quit()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_page_access_beyond_the_loopback_needs_credentials():
    from ganzoo_directions.errors import GanzooError
    from ganzoo_directions.explore import page_access

    assert page_access("127.0.0.1", False, None) == (None, True, "")
    credentials, allowed, said = page_access("0.0.0.0", False, None)
    assert credentials is None and not allowed and "read-only" in said
    credentials, allowed, said = page_access("127.0.0.1", True, "ann:s3cret")  # --share: public
    assert credentials == ("ann", "s3cret") and allowed and "asks for the --auth" in said
    with pytest.raises(GanzooError, match="USER:PASS"):
        page_access("0.0.0.0", False, "no-colon")


def test_an_exposed_page_is_read_only_and_serves_no_files(run, tmp_path):
    """--host 0.0.0.0 without --auth: labels read-only (said on start-up); Gradio's file route and the
    run-history endpoints serve nothing of this machine."""
    pytest.importorskip("gradio", reason="the [explore] extra is not installed")
    port = free_port()
    exe = Path(sys.executable).with_name("zoo-dirs")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    server = subprocess.Popen(
        [str(exe), "explore", str(run), "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            return urllib.request.urlopen(base + path, timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return -1

    try:
        assert wait_until(lambda: status("/") == 200, timeout=120)
        for path in (
            "/gradio_api/file=/etc/passwd",
            "/gradio_api/file=http://127.0.0.1:9/x",
            "/gradio_api/runs",
        ):
            assert status(path) != 200, path
        assert status("/gradio_api/run-history/anything") != 200
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    assert "labels read-only" in out and "without --auth" in out
    assert f"open http://localhost:{port}/ in a browser" in out, out
    assert "share=True" not in out and "--share adds a public link" in out  # our flag, not Gradio's


def test_the_page_answers_only_its_own_host_names(run):
    """DNS rebinding: a foreign page whose name resolves to 127.0.0.1 sends its own Host and is
    refused by the loopback-bound page (the app as `zoo-dirs explore` builds it, through HTTP)."""
    pytest.importorskip("gradio", reason="the [explore] extra is not installed")
    from gradio.routes import App
    from starlette.testclient import TestClient

    from ganzoo_directions.explore import allowed_hosts, app_kwargs, build_app

    assert allowed_hosts("127.0.0.1", False) == ["127.0.0.1", "localhost", "::1", "[::1]"]
    assert allowed_hosts("0.0.0.0", False) == ["*"] and allowed_hosts("127.0.0.1", True) == ["*"]
    assert allowed_hosts("10.0.0.5", False)[0] == "10.0.0.5"
    app = App.create_app(build_app(explorer_of(run)), app_kwargs=app_kwargs("127.0.0.1", False))
    client = TestClient(app)
    for own in ("127.0.0.1:7860", "localhost:7860", "localhost"):
        assert client.get("/gradio_api/info", headers={"Host": own}).status_code == 200, own
    for foreign in ("evil.example", "evil.example:7860", "127.0.0.1.evil.example"):
        assert client.get("/gradio_api/info", headers={"Host": foreign}).status_code == 400, foreign
