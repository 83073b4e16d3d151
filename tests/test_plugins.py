"""The plugin host: entry points, duplicate names, load errors, selection by environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from ganzoo_directions import hookspecs, plugins
from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.errors import PluginConflictError, PluginLoadError, UnknownNameError
from ganzoo_directions.interfaces import DirectionMethod, DiscoveryResult, GeneratorAdapter

from .helpers import REPO, invoke, run_cli


def test_builtins_arrive_through_entry_points(registry):
    assert registry.generator("sprites").plugin.distribution == "ganzoo-directions-sprites"
    for name in ("baseline", "two-shift", "centroid"):
        entry = registry.method(name)
        assert entry.plugin.distribution == "ganzoo-directions-methods"
        assert issubclass(entry.cls, DirectionMethod)
    assert issubclass(registry.generator("sprites").cls, GeneratorAdapter)


def test_unknown_name_lists_valid_and_closest(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.method("centriod")
    text = str(info.value)
    assert "did you mean 'centroid'" in text
    assert "baseline" in text and "two-shift" in text


@pytest.mark.slow
def test_a_first_party_name_whose_plugin_is_missing_names_the_plugin():
    """`--gen stylegan2` without its plugin says what to install, not "did you mean 'sngan'"."""
    from .helpers import run_cli

    env = {"GANZOO_DIRECTIONS_PLUGINS": "ganzoo-directions-sprites,ganzoo-directions-methods"}
    for args, plugin in (
        (["--gen", "stylegan2"], "ganzoo-directions-stylegan2"),
        (["--gen", "biggan"], "ganzoo-directions-biggan"),
        (["--method", "ganspace"], "ganzoo-directions-closedform"),
    ):
        result = run_cli("discover", *args, "--out", "unused", env=env)
        assert result.returncode == 2 and f"pip install {plugin}" in result.stderr, result.stderr
        assert "did you mean" not in result.stderr


def test_core_imports_no_plugin():
    code = textwrap.dedent("""
        import sys
        import ganzoo_directions.cli, ganzoo_directions.training, ganzoo_directions.runs
        import ganzoo_directions.directions, ganzoo_directions.metrics, ganzoo_directions.traversal
        leaked = [m for m in sys.modules if m.startswith("ganzoo_directions_")]
        assert not leaked, leaked
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    for path in (REPO / "ganzoo_directions").glob("*.py"):
        assert "import ganzoo_directions_" not in path.read_text(), path


def _fake_distribution(root: Path, dist: str, module: str, body: str) -> None:
    """A real installed distribution (dist-info with an entry point) on a path we control."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text(f"[ganzoo_directions]\n{module} = {module}\n")


DUPLICATE_SPRITES = """
    from ganzoo_directions.hookspecs import hookimpl
    from ganzoo_directions_sprites import SpritesGenerator

    class Copy(SpritesGenerator):
        pass

    @hookimpl
    def register_generators(register):
        register(Copy)
"""


@pytest.mark.slow
def test_duplicate_name_names_both_distributions_and_neither_is_used(tmp_path):
    """Two plugins registering one name: every command still works and warns, naming both; the name
    itself is refused (which of the two would run is not for the tool to guess)."""
    _fake_distribution(tmp_path, "evil-sprites", "evil_sprites", DUPLICATE_SPRITES)
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_cli("list", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "registered twice" in result.stderr
    sprites = f"ganzoo-directions-sprites {version('ganzoo-directions-sprites')}"
    assert sprites in result.stderr and "evil-sprites 9.9" in result.stderr
    assert "sngan-sprites" in result.stdout  # the other generators are listed
    used = run_cli("discover", "--gen", "sprites", "--out", str(tmp_path / "run"), env=env)
    assert used.returncode == 2 and "registered twice" in used.stderr and "evil-sprites 9.9" in used.stderr
    assert not (tmp_path / "run").exists()
    listed = json.loads(run_cli("plugins", env=env).stdout)
    assert any("registered twice" in row.get("error", "") for row in listed)


FAULTY_PLUGINS = {
    "raises": """
        from ganzoo_directions.hookspecs import hookimpl

        @hookimpl
        def register_direction_methods(register):
            raise RuntimeError("boom in register")
    """,
    "typo": """
        from ganzoo_directions.hookspecs import hookimpl

        @hookimpl
        def register_generator(register):  # no such hook: missing 's'
            pass
    """,
    "unmarked": """
        def register_generators(register):  # no @hookimpl: pluggy would skip it in silence
            pass
    """,
    "unmarked_typo": """
        def register_direction_method(register):
            pass
    """,
}


@pytest.mark.parametrize(
    "kind, said",
    [
        ("raises", "failed in register_direction_methods: RuntimeError: boom in register"),
        ("typo", "did you mean 'register_generators'"),
        ("unmarked", "register_generators has no @hookimpl"),
        (
            "unmarked_typo",
            "register_direction_method is no hook (did you mean 'register_direction_methods'?)",
        ),
    ],
)
def test_a_faulty_plugin_is_skipped_with_a_line_that_names_the_fix(tmp_path, kind, said):
    """Through the real loader (an installed distribution, its entry point): every command keeps
    working, the warning names the distribution and what to change."""
    _fake_distribution(tmp_path, f"faulty-{kind}".replace("_", "-"), f"faulty_{kind}", FAULTY_PLUGINS[kind])
    result = run_cli("list", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert said in result.stderr and "9.9" in result.stderr and "skipped" in result.stderr
    assert "Traceback" not in result.stderr and "centroid-ortho" in result.stdout


def test_plugin_selection_by_environment(tmp_path):
    _fake_distribution(tmp_path, "evil-sprites", "evil_sprites", DUPLICATE_SPRITES)
    env = {
        "PYTHONPATH": str(tmp_path),
        plugins.ENV_PLUGINS: "ganzoo-directions-sprites,ganzoo-directions-methods",
    }
    result = run_cli("list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "evil" not in result.stdout and '"sprites"' in result.stdout


@pytest.mark.slow
def test_import_error_names_the_plugin_and_cause(tmp_path):
    _fake_distribution(tmp_path, "broken-plugin", "broken_plugin", "import not_a_module_xyz\n")
    result = run_cli("list", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr  # one broken plugin does not break every command
    assert "warning: plugin" in result.stderr and "broken-plugin 9.9" in result.stderr
    assert "not_a_module_xyz" in result.stderr and "skipped" in result.stderr
    assert "Traceback" not in result.stderr and "sprites" in result.stdout
    listed = run_cli("plugins", env={"PYTHONPATH": str(tmp_path)})
    assert listed.returncode == 0
    assert any("not_a_module_xyz" in row.get("error", "") for row in json.loads(listed.stdout))


def test_duplicate_in_process_and_bad_registrations():
    host = plugins.PluginHost()
    host.load_entry_points()

    class Dup:
        @hookspecs.hookimpl
        def register_direction_methods(self, register):
            from ganzoo_directions_methods import Baseline

            register(Baseline)

    host.register(Dup(), plugins.PluginInfo("dup", "dup-dist", "1.0"))
    registry = host.registry()
    assert "baseline" not in registry.methods and "centroid" in registry.methods
    methods = re.escape(f"ganzoo-directions-methods {version('ganzoo-directions-methods')}")
    with pytest.raises(PluginConflictError, match=methods + r".*dup-dist 1\.0"):
        registry.method("baseline")

    for plugin, said in (
        (int, r"bad-dist 1\.0 registered int, which is not a DirectionMethod"),
        ("instance", r"registered an instance of Baseline.*register the class itself"),
        ("unnamed", r"registered Unnamed without a 'name' class attribute"),
    ):
        host = plugins.PluginHost()
        host.load_entry_points()

        class Bad:
            @hookspecs.hookimpl
            def register_direction_methods(self, register, plugin=plugin):
                from ganzoo_directions_methods import Baseline

                class Unnamed(Baseline):
                    name = ""

                register({"instance": Baseline(), "unnamed": Unnamed}.get(plugin, plugin))

        host.register(Bad(), plugins.PluginInfo("bad", "bad-dist", "1.0"))
        registry = host.registry()  # the others are kept
        assert "centroid" in registry.methods and len(host.failures) == 1
        assert re.search(said, host.failures[0]["error"]), host.failures[0]


def test_hooks_are_called_through_pluggy_so_implementations_may_take_fewer_arguments():
    host = plugins.PluginHost()
    host.load_entry_points()
    calls = []

    class Quiet:  # pluggy's promise: an implementation may accept a subset of the spec's arguments
        @hookspecs.hookimpl
        def register_direction_methods(self):
            calls.append("called")

    host.register(Quiet(), plugins.PluginInfo("quiet", "quiet-dist", "1.0"))
    registry = host.registry()
    assert calls == ["called"] and "centroid" in registry.methods


def test_unknown_hook_is_rejected():
    host = plugins.PluginHost()

    class Typo:
        @hookspecs.hookimpl
        def register_generator(self, register):  # no such hook (missing 's')
            pass

    with pytest.raises(PluginLoadError, match=r"typo-dist.*did you mean 'register_generators'"):
        host.register(Typo(), plugins.PluginInfo("typo", "typo-dist", "1.0"))


def test_plugins_command_prints_json():
    import json

    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    rows = {row["distribution"]: row for row in json.loads(result.stdout)}
    assert rows["ganzoo-directions-methods"]["hooks"] == ["register_direction_methods"]
    assert rows["ganzoo-directions-sprites"]["hooks"] == ["register_generators"]


def _axes(k: int, d: int) -> torch.Tensor:
    return torch.eye(d)[:k]


#: what a method plugin's discover returns -> what `zoo-dirs discover` says (None: accepted)
BROKEN_RESULTS = {
    "a-bare-tensor": (lambda k, d: _axes(k, d), "not a DiscoveryResult"),
    "transposed": (lambda k, d: DiscoveryResult(_axes(d, d)[:, :k].contiguous()), "transposed?"),
    "not-unit": (lambda k, d: DiscoveryResult(2 * _axes(k, d)), "must be unit rows"),
    "all-zero": (lambda k, d: DiscoveryResult(torch.zeros(k, d)), "are all zeros"),
    "nan": (lambda k, d: DiscoveryResult(torch.full((k, d), float("nan"))), "NaN or infinite"),
    "float64": (lambda k, d: DiscoveryResult(_axes(k, d).double()), None),
}


@pytest.mark.parametrize("label", list(BROKEN_RESULTS))
def test_discover_checks_what_a_method_plugin_returns_before_writing(label, registry, tmp_path):
    """The cheap parts of check_method on every result: one line naming the plugin's distribution,
    no direction file; a float64 set is fine (stored as float32)."""
    make, said = BROKEN_RESULTS[label]

    class Broken(DirectionMethod):
        name = f"broken-{label}"

        def discover(self, generator, settings):
            return make(4, generator.latent_dim)

    class Plugin:
        @hookspecs.hookimpl
        def register_direction_methods(self, register):
            register(Broken)

    plugins.get_host().register(Plugin(), plugins.PluginInfo("broken", "broken-dist", "2.0"))
    out = tmp_path / "run"
    result = invoke(
        "discover", "--gen", "sprites", "--method", Broken.name, "--directions", "4", "--out", str(out)
    )
    if said is None:
        assert result.returncode == 0, result.stderr
        assert DirectionSet.load(out).directions.dtype == torch.float32
        return
    assert result.returncode == 1 and said in result.stderr, result.stderr
    assert "broken-dist 2.0" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "directions.safetensors").exists()


@pytest.mark.parametrize(
    "label, said",
    [
        ("bytes", "render must return images in [-1, 1], got values from 43.9 to 163"),
        ("small", "render returned shape (1, 3, 8, 8), expected (1, 3, 16, 16)"),
        ("no-super", "failed to build: AttributeError"),
    ],
)
def test_a_generator_plugin_that_breaks_its_contract_is_named_when_built(label, said, registry, tmp_path):
    from ganzoo_directions_sprites import SpritesGenerator

    class Broken(SpritesGenerator):
        name = f"broken-{label}"

        def __init__(self, **options):
            if label != "no-super":
                super().__init__(**options)
            else:
                self.net = torch.nn.Linear(2, 2)  # before Module.__init__: the classic slip

        def render(self, latents):
            images = super().render(latents)
            if label == "bytes":
                return (images + 1) * 127.5
            return images[..., ::2, ::2]

    class Plugin:
        @hookspecs.hookimpl
        def register_generators(self, register):
            register(Broken)

    plugins.get_host().register(Plugin(), plugins.PluginInfo("brokengen", "brokengen-dist", "3.0"))
    result = invoke("traverse", "--help")  # the registry loads; building happens in discover
    assert result.returncode == 0
    out = tmp_path / "run"
    result = invoke(
        "discover", "--gen", Broken.name, "-g", "image_size=16", "--method", "axes", "--out", str(out)
    )
    assert result.returncode == 1 and said in result.stderr, result.stderr
    assert "brokengen-dist 3.0" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()  # refused before the run folder was claimed


@pytest.mark.parametrize("setting, value", [("eps_max", -1.0), ("num_directions", 0), ("lr", "fast")])
def test_recommended_settings_are_checked_before_they_are_taken(setting, value, registry, tmp_path):
    from ganzoo_directions_closedform import Axes

    class Recommends(Axes):
        name = f"recommends-{setting}"

        def recommended_settings(self, generator):
            return {setting: value}

    class Plugin:
        @hookspecs.hookimpl
        def register_direction_methods(self, register):
            register(Recommends)

    plugins.get_host().register(Plugin(), plugins.PluginInfo("rec", "rec-dist", "1.5"))
    result = invoke("discover", "--gen", "sprites", "--method", Recommends.name, "--out", str(tmp_path / "r"))
    assert result.returncode == 1, result.stderr
    assert f"recommends {setting} {value!r}" in result.stderr and "rec-dist 1.5" in result.stderr
