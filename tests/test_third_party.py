"""Third-party plugins for real: pip install of the example plugin in a separate environment, and docs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ganzoo_directions import hookspecs
from ganzoo_directions.interfaces import GeneratorAdapter

from .helpers import REPO

EXAMPLE = REPO / "docs" / "examples" / "ganzoo-directions-example"
DOCS = (REPO / "docs" / "plugins.md").read_text()


def _hook_names() -> list[str]:
    return sorted(
        name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganzoo_directions_spec")
    )


def test_every_hook_is_documented_with_its_signature():
    names = _hook_names()
    assert names == ["register_direction_methods", "register_generators"]
    for name in names:
        assert f"### `{name}(register)`" in DOCS, f"docs/plugins.md has no section for hook {name}"
        assert re.search(rf"\*\*Signature:\*\* `{name}\(register: Callable", DOCS), name


def test_every_generator_member_is_documented():
    members = {n for n in vars(GeneratorAdapter) if not n.startswith("_")} - {"training", "dump_patches"}
    missing = sorted(m for m in members if f"`{m}" not in DOCS)
    assert not missing, f"GeneratorAdapter members missing from docs/plugins.md: {missing}"


@pytest.mark.slow
def test_example_plugin_passes_its_own_tests():
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def plugin_env(tmp_path):
    """A fresh virtual environment that sees this test environment (the project and its plugins)
    through a .pth file, so that installing into it touches nothing here."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # uses our pip
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "zz_ganzoo_test_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def pip_install(python: Path, source: Path) -> None:
    """Install the plugin folder ``source`` into the environment of ``python`` (offline, no deps)."""
    args = ["-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source)]
    install = subprocess.run([str(python), *args], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr


def zoo(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "ganzoo_directions", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_pip_install_use_and_uninstall_a_third_party_plugin(plugin_env, tmp_path):
    python = plugin_env
    before = json.loads(zoo(python, "list", "--json").stdout)
    assert "blobs" not in {row["name"] for row in before}

    pip_install(python, EXAMPLE)

    rows = {row["name"]: row for row in json.loads(zoo(python, "list", "--json").stdout)}
    assert (
        rows["blobs"]["distribution"] == "ganzoo-directions-example" and rows["blobs"]["version"] == "0.1.0"
    )
    assert rows["jacobian-svd"]["kind"] == "method" and "centroid" in rows  # built-ins still there
    plugins = {row["distribution"]: row for row in json.loads(zoo(python, "plugins").stdout)}
    assert plugins["ganzoo-directions-example"]["hooks"] == [
        "register_direction_methods",
        "register_generators",
    ]

    for method, extra in (
        ("jacobian-svd", ["-p", "samples=4"]),
        ("centroid", ["--steps", "3", "-p", "hidden=16"]),
    ):
        out = tmp_path / f"run-{method}"
        result = zoo(
            python,
            "discover",
            "--gen",
            "blobs",
            "--method",
            method,
            "--directions",
            "3",
            "--batch",
            "4",
            "--rca-pairs",
            "8",
            "--out",
            str(out),
            *extra,
        )
        assert result.returncode == 0, result.stderr
        assert (out / "directions.safetensors").is_file() and (out / "traversal.png").is_file()

    uninstall = subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-y", "-q", "ganzoo-directions-example"],
        capture_output=True,
        text=True,
    )
    assert uninstall.returncode == 0, uninstall.stderr
    after = {row["name"] for row in json.loads(zoo(python, "list", "--json").stdout)}
    assert "blobs" not in after and "centroid" in after


def _snippet(after: str, language: str) -> str:
    """The first ``language`` code block after the line ``after`` in docs/plugins.md."""
    start = DOCS.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(DOCS, start)
    assert match is not None, f"no {language} block after {after!r}"
    return match.group(1)


@pytest.mark.slow
def test_the_smallest_plugin_of_the_docs_installs_and_runs_as_shown(plugin_env, tmp_path):
    python = plugin_env
    source = tmp_path / "mygan"
    package = source / "ganzoo_directions_mygan"
    package.mkdir(parents=True)
    (source / "pyproject.toml").write_text(_snippet("## The smallest plugin", "toml"))
    (package / "plugin.py").write_text(_snippet("`ganzoo_directions_mygan/plugin.py`:", "python"))
    (package / "adapter.py").write_text(_snippet("`ganzoo_directions_mygan/adapter.py`", "python"))
    (package / "method.py").write_text(_snippet("`ganzoo_directions_mygan/method.py`", "python"))
    (package / "__init__.py").write_text("")
    pip_install(python, source)
    rows = {row["name"]: row for row in json.loads(zoo(python, "list", "--json").stdout)}
    for name in ("mygan", "fd-pca"):
        assert rows[name]["distribution"] == "ganzoo-directions-mygan" and rows[name]["version"] == "0.1.0"
    for method in ("baseline", "fd-pca"):
        out = tmp_path / f"run-{method}"
        args = ["discover", "--gen", "mygan", "--method", method, "--steps", "3", "--directions", "4"]
        result = zoo(python, *args, "--batch", "4", "--rca-pairs", "8", "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert (out / "directions.safetensors").is_file()
    refused = zoo(
        python, "discover", "--gen", "mygan", "--weights", "/etc/hostname", "--out", str(tmp_path / "r")
    )
    assert refused.returncode == 1 and "takes no weights" in refused.stderr
