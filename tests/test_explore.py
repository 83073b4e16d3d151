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
    one = explorer.render(0, 1, [])
    assert explorer.render(0, 2, []).size == (2 * one.width, one.height)  # samples side by side
    assert explorer.render(0, 10**6, []).size == (4 * one.width, 2 * one.height)  # at most 8, rows of 4
    assert explorer.render(0, 5, []).size == (4 * one.width, 2 * one.height)  # a short row is filled
    assert len(explorer.strips(0)) == 4
    for seed in (-3, float("nan"), "x", None, 2**70):  # what a page could send: never an error
        explorer.render(seed, "2", [])


def test_pages_reach_every_direction_strongest_first(run):
    explorer = explorer_of(run, sliders=3)
    order = DirectionSet.load(run).ranked()
    assert explorer.pages == -(-len(order) // 3) >= 2
    assert [k for page in range(explorer.pages) for k in explorer.directions_on(page)] == order
    assert explorer.directions_on(10**9) == explorer.directions_on(explorer.pages - 1)  # clamped
    assert explorer.directions_on("junk") == explorer.directions == order[:3]
    assert explorer.page_name(0) == f"1-3 of {len(order)} (strongest)"
    still = pixels(explorer.render(0, 1, [], page=1))
    second_page = order[3]  # the first slider of page 2 moves the 4th strongest direction
    moved = pixels(explorer.render(0, 1, [explorer.ranges[second_page]], page=1))
    assert (moved - still).abs().mean() > 1
    assert len(explorer.strips(0, page=explorer.pages - 1)) == len(order) - 3 * (explorer.pages - 1)


def test_slider_ranges_follow_each_directions_spread(run):
    """A SeFa set records eps-max 6 on a GAN whose 16-dim z has norm ~4: each unit direction's slider
    stops at 3 standard deviations of the latents along it (where images are still images); a
    direction twice as long per eps stops at half that; a set recorded with a shorter range keeps it."""
    from ganzoo_directions.traversal import direction_ranges

    dset = DirectionSet.load(run)
    generator = generator_for(dset)
    assert dset.eps_range == 6.0
    ranges = direction_ranges(generator, dset)  # (K,)
    assert ranges.shape == (dset.num_directions,)
    assert torch.allclose(ranges, torch.full_like(ranges, 3.0), rtol=0.15)  # z ~ N(0, I): std 1 along any
    longer = DirectionSet(dset.directions * 2, None, dset.spec)
    assert torch.allclose(direction_ranges(generator, longer), ranges / 2, rtol=1e-4)
    short = DirectionSet(dset.directions, None, {**dset.spec, "settings": {"eps_max": 1.0}})
    assert torch.equal(direction_ranges(generator, short), torch.ones(dset.num_directions))
    explorer = explorer_of(run, sliders=2)
    k = explorer.directions[0]
    assert explorer.ranges == [round(r, 2) for r in ranges.tolist()]  # as the page shows them
    assert explorer.clamp(100, k) == explorer.ranges[k] and explorer.clamp(-100, k) == -explorer.ranges[k]
    assert "rank 1 · image change" in explorer.describe(k) and f"±{ranges[k]:.3g}" in explorer.describe(k)
    assert explorer_of(run, magnitude=5.0).ranges == [5.0] * dset.num_directions  # --range: every slider


def test_the_page_says_where_the_set_came_from(tmp_path):
    from ganzoo_directions.explore import source_line

    file = tmp_path / "directions.safetensors"
    file.touch()
    assert source_line(str(file), file, True, True) == f"from {file}; labels saved in it"
    assert "read-only (the page is reachable beyond this machine without --auth)" in source_line(
        str(file), file, True, False
    )
    hub = source_line("ann/sprites-dirs@v2", Path("/cache/x/directions.safetensors"), False, True)
    assert (
        hub == "from the Hub: ann/sprites-dirs at v2; labels read-only (start with --out DIR to label a copy)"
    )
    copied = source_line("ann/sprites-dirs", tmp_path / "copy" / "directions.safetensors", True, True)
    assert copied.startswith("from the Hub: ann/sprites-dirs at its newest revision, copied to ")
    assert copied.endswith("labels saved in the copy")


def test_a_busy_port_is_one_line_naming_port_before_anything_loads(run):
    pytest.importorskip("gradio", reason="the [explore] extra is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("explore", str(run), "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port N" in result.stderr
    assert "GRADIO_SERVER_PORT" not in result.stderr and not result.stdout  # nothing was loaded


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
    assert first.refresh_labels() == {1: "hue"} and second.dset.labels != {1: "hue"}  # read when asked
    assert second.refresh_labels() == {1: "hue"}  # (each page load asks: labels from another tab)


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


@pytest.mark.slow
def test_the_page_in_a_real_browser(run, tmp_path):
    """Loads, a slider moves the image, an out-of-range value does not break it, a label typed in
    the page lands in the file and is there after a reload, as is one written meanwhile by
    `zoo-dirs label`; a control pages through the other directions; no image offers Gradio's Share
    (Spaces only). GANZOO_SCREENSHOT=path keeps the browser's screenshot (the README's)."""
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
        order = DirectionSet.load(run).ranked()
        k = order[0]
        slider = "#slider-0 input[type=range]"  # the strongest direction's
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

        number = browser.find_element(By.CSS_SELECTOR, "#slider-0 input[type=number]")
        number.clear()
        number.send_keys("999", Keys.ENTER)  # out of range: clamped by the page or the server
        moved_src = image().get_attribute("src")
        wait_until(lambda: image().get_attribute("src") != moved_src, timeout=10)
        assert server.poll() is None and up()  # the server is still there

        def box(i: int):
            return browser.find_element(By.CSS_SELECTOR, f"#label-{i} textarea, #label-{i} input")

        box(0).clear()
        box(0).send_keys("background", Keys.ENTER)  # the shipped GAN's strongest SeFa direction
        assert wait_until(lambda: DirectionSet.load(run).labels.get(k) == "background", timeout=60)
        said = f"saved: direction {k} is 'background'"  # as text: no entity shown as "&#x27;"
        assert wait_until(lambda: browser.find_element(By.CSS_SELECTOR, "#status").text == said, 30)
        shot = tmp_path / "explore.png"
        browser.save_screenshot(str(shot))
        if os.environ.get("GANZOO_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["GANZOO_SCREENSHOT"])
        assert not browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Share'], button[title='Share']")
        assert "labels saved in it" in browser.find_element(By.CSS_SELECTOR, "#source").text

        assert invoke("label", str(run), f"{order[1]}=hue").returncode == 0  # meanwhile, elsewhere
        browser.refresh()
        assert wait_until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#label-1 textarea, #label-1 input"), 60
        )
        assert wait_until(lambda: box(1).get_attribute("value") == "hue", timeout=30)
        assert box(0).get_attribute("value") == "background"  # typed in the page: still there

        page = browser.find_element(By.CSS_SELECTOR, "#page input")  # directions 5-8 of 16
        page.click()
        option = f"5-8 of {len(order)}"
        assert wait_until(lambda: browser.find_elements(By.XPATH, f"//li[contains(., '{option}')]"), 30)
        browser.find_element(By.XPATH, f"//li[contains(., '{option}')]").click()
        label_of = f"label of direction {order[4]}"
        assert wait_until(lambda: label_of in browser.find_element(By.CSS_SELECTOR, "#label-0").text, 60)
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


@pytest.mark.slow
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
