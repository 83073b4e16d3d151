"""The zoo-dirs command line: in this process through click, and as a real process where it matters
(the console script end to end, Ctrl-C, two processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganzoo_directions.cli import cli
from ganzoo_directions.directions import DirectionSet

from .helpers import invoke, run_cli, wait_until

COMMANDS = [
    [],
    ["list"],
    ["plugins"],
    ["discover"],
    ["traverse"],
    ["push"],
    ["pull"],
    ["evaluate"],
    ["compare"],
    ["benchmark"],
    ["label"],
    ["explore"],
    ["project"],
    ["edit"],
    ["import"],
    ["export"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_help_works_for_every_command(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_every_command_is_covered():
    assert {c[0] for c in COMMANDS if c} == set(cli.commands)


def test_version():
    result = invoke("--version")
    assert result.returncode == 0 and version("ganzoo-directions") in result.stdout  # the installed one


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--gen", "sprite"], "did you mean 'sprites'"),
        (["--method", "centriod"], "did you mean 'centroid'"),
        (["--method", "nope"], "valid methods: "),
        (["--directions", "0"], "--directions"),
        (["--steps", "0"], "--steps"),
        (["--batch", "1"], "--batch"),
        (["--eps-max", "-1"], "--eps-max"),
        (["-p", "gamma"], "KEY=VALUE"),
        (["-p", "unknown=1"], "valid settings of method"),
        (["-p", "deformator=cubic"], "must be one of"),
        (["-g", "latent_dim=4"], "must be at least 8"),
        (["--directions", "9"], "at most 8 directions"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    gen = [] if "--gen" in args else ["--gen", "sprites"]  # the sprites options and limits
    args = [*gen, "--out", str(tmp_path / "run"), "--steps", "1", *args]
    result = CliRunner().invoke(cli, ["discover", *args])
    assert result.exit_code != 0
    assert expected in result.output
    if expected == "valid methods: ":
        assert all(name in result.output for name in ("baseline", "centroid", "two-shift", "sefa"))
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_traverse_refuses_negative_range_and_bad_indices(tmp_path):
    for args, expected in ((["--range", "-2"], "--range"), (["--directions", "1,-2"], "non-negative")):
        result = CliRunner().invoke(cli, ["traverse", str(tmp_path), "--out", "x.png", *args])
        assert result.exit_code != 0 and expected in result.output


def test_corrupt_and_foreign_direction_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"garbage")
    result = invoke("traverse", str(junk), "--out", str(tmp_path / "g.png"))
    assert result.returncode != 0
    assert "not a safetensors file" in result.stderr and "Traceback" not in result.stderr
    result = invoke("traverse", str(tmp_path), "--out", str(tmp_path / "g.png"))
    assert result.returncode != 0 and "no such file" in result.stderr


@pytest.mark.slow
def test_discover_end_to_end_then_traverse(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "discover",
        "--gen",
        "sprites",
        "--method",
        "two-shift",
        "--steps",
        "12",
        "--batch",
        "8",
        "--log-every",
        "4",
        "--rca-pairs",
        "64",
        "-p",
        "hidden=64",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "run.json",
        "directions.safetensors",
        "reconstructor.safetensors",
        "log.jsonl",
        "checkpoint.pt",
        "traversal.png",
    ):
        assert (out / name).is_file(), name
    assert "RCA" in result.stderr and "zoo-dirs traverse" in result.stderr
    dset = DirectionSet.load(out)
    spec = dset.spec
    assert spec["method"] == {
        "name": "two-shift",
        "hyperparameters": {
            "deformator": "mlp",
            "hidden": 64,
            "unit_shift": False,
            "init": "identity",
            "shift_weight": 0.5,
            "orthogonality": 0.0,
        },
    }
    assert spec["settings"]["steps"] == 12 and spec["settings"]["num_directions"] == 8
    assert spec["generator"]["name"] == "sprites" and len(spec["generator"]["fingerprint"]) == 64
    assert spec["metrics"]["rca_chance"] == 1 / 8
    correct = spec["metrics"]["rca"] * spec["metrics"]["rca_pairs"]
    assert abs(correct - round(correct)) < 1e-6  # a count of correct pairs over the pairs
    assert spec["package_version"] == version("ganzoo-directions")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [4, 8, 12]

    # an existing run folder is never overwritten
    again = invoke("discover", "--steps", "2", "--out", str(out))
    assert again.returncode != 0 and "already holds a run" in again.stderr

    for args in (
        ["--directions", "0,3", "--samples", "2"],
        ["--layout", "consecutive", "--directions", "1,2", "--samples", "3"],
    ):
        grid = tmp_path / f"grid{len(args)}.png"
        result = invoke("traverse", str(out), "--out", str(grid), *args)
        assert result.returncode == 0, result.stderr
        from PIL import Image

        width, height = Image.open(grid).size
        assert width > 64 * 5 and height > 64 * 2
    result = invoke("traverse", str(out), "--layout", "consecutive", "--directions", "1", "--out", "x.png")
    assert result.returncode != 0 and "two directions" in result.stderr
    result = invoke("traverse", str(out), "--directions", "8", "--out", str(tmp_path / "x.png"))
    assert result.returncode != 0 and "out of range" in result.stderr


@pytest.mark.slow
def test_ctrl_c_then_resume_in_a_real_process(tmp_path):
    out = tmp_path / "run"
    args = [
        "discover",
        "--gen",
        "sprites",
        "--method",
        "baseline",
        "--steps",
        "4000",
        "--batch",
        "8",
        "--log-every",
        "1",
        "--checkpoint-every",
        "100000",
        "--rca-pairs",
        "32",
        "--out",
        str(out),
    ]
    exe = Path(sys.executable).with_name("zoo-dirs")
    proc = subprocess.Popen([str(exe), *args], stderr=subprocess.PIPE, text=True)
    wait_until((out / "log.jsonl").exists)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    import torch

    stopped = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped < 4000
    result = invoke(
        "discover", "--resume", "--out", str(out), "--steps", str(stopped + 5), "--rca-pairs", "32"
    )
    assert result.returncode == 0, result.stderr
    assert f"resuming from step {stopped}" in result.stderr
    assert DirectionSet.load(out).spec["settings"]["steps"] == stopped + 5
    mismatch = invoke("discover", "--resume", "--out", str(out), "--method", "centroid")
    assert mismatch.returncode != 0 and "--method centroid (the run has baseline)" in mismatch.stderr


@pytest.mark.slow
def test_two_processes_with_one_seed_write_identical_directions(tmp_path):
    """Reproducible on CPU: batch 32 and the 1024-wide MLP are where thread-order effects showed up."""
    sets = []
    for name in ("a", "b"):
        result = run_cli(
            "discover",
            "--gen",
            "sprites",
            "--method",
            "two-shift",
            "--steps",
            "8",
            "--rca-pairs",
            "16",
            "-g",
            "image_size=32",
            "--out",
            str(tmp_path / name),
            env={"OMP_NUM_THREADS": "2"},
        )
        assert result.returncode == 0, result.stderr
        sets.append(DirectionSet.load(tmp_path / name))
    import torch

    assert torch.equal(sets[0].directions, sets[1].directions)
    assert sets[0].metrics["rca"] == sets[1].metrics["rca"]


def test_progress_shows_seconds_per_step_and_warns_of_a_schedule_of_days():
    """A real GAN on a CPU: 0.02 steps/s reads '50 s/step', not '0.0 steps/s', and the first speed
    says how long the steps left take when that is more than a day."""
    import io

    from rich.console import Console

    from ganzoo_directions.progress import LineReporter, format_rate

    assert (
        format_rate(2.44) == "2.4 steps/s"
        and format_rate(0.4) == "2.50 s/step"
        and format_rate(0.02) == "50 s/step"
    )
    out = io.StringIO()
    reporter = LineReporter(Console(file=out, width=80), "centroid on biggan", min_interval=0)
    reporter.start(200_000, 0)
    stats = {"loss": 1.0, "acc": 0.5, "mae": 0.1, "steps_per_s": 0.02}
    reporter.advance(25, stats)
    reporter.advance(50, stats)
    text = out.getvalue()
    assert "50 s/step" in text and "0.0 steps/s" not in text
    assert text.count("note: at 50 s/step the 199975 steps left take about 116 days") == 1
    quick = io.StringIO()
    fast = LineReporter(Console(file=quick, width=80), "fast", min_interval=0)
    fast.start(2000, 0)
    fast.advance(25, {**stats, "steps_per_s": 6.0})
    assert "note" not in quick.getvalue() and "6.0 steps/s" in quick.getvalue()


def test_the_progress_bar_keeps_step_time_left_and_rate_at_80_columns():
    import io
    import re

    from rich.console import Console

    from ganzoo_directions.progress import RichReporter

    out = io.StringIO()
    reporter = RichReporter(
        Console(file=out, width=80, force_terminal=True), "centroid-ortho on sngan-sprites"
    )
    reporter.start(2000, 0)
    reporter.advance(
        150, {"loss": 25.4, "ce": 0.7, "mae": 0.55, "reg": 23.4, "acc": 0.78, "steps_per_s": 2.39}
    )
    reporter.finish()
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n").splitlines()[-1]
    assert len(last) <= 80 and "150/2000" in last and "2.4 steps/s" in last and "-:--:--" in last
    assert "loss 25.400" in last  # the statistics follow, cut with an ellipsis where they must


def test_list_fits_80_columns_without_breaking_words(monkeypatch):
    from .helpers import invoke

    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("list")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and all(len(line) <= 80 for line in lines)
    assert f"generator sngan-sprites  (ganzoo-directions-sngan {version('ganzoo-directions-sngan')})" in lines
    assert f"method orojar-span  (ganzoo-directions-methods {version('ganzoo-directions-methods')})" in lines
    assert not any(line.startswith(("┃", "│")) for line in lines)  # a block per entry, not a table


def test_a_busy_machine_gets_fewer_threads_and_a_slowdown_is_said(monkeypatch, tmp_path):
    """Measured on this project's 2-core machine beside two training jobs: 1 thread ran the quick
    start at 3.8 steps/s, 2 threads at 1.6 with 3.4x the CPU time (docs/performance.md)."""
    import os

    import torch

    from ganzoo_directions import runs
    from ganzoo_directions.progress import ThroughputWatch
    from ganzoo_directions.runs import pick_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
        for busy, expected in ((3.2, (1, 4)), (1.1, (3, 4)), (0.1, None)):  # idle: every core
            monkeypatch.setattr(runs, "busy_cores", lambda busy=busy: busy)
            assert pick_threads("cpu") == expected
            assert torch.get_num_threads() == (expected[0] if expected else 4)
        assert pick_threads("cuda") is None
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert pick_threads("cpu") is None  # the user's choice stands
    finally:
        torch.set_num_threads(before)
    monkeypatch.undo()
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 3.0, 3.0))  # a load that just ended ...
    now = tmp_path / "loadavg"
    now.write_text("3.00 3.00 3.00 1/80 999\n")
    assert runs.busy_cores(now) == 0  # ... counts as what runs now: nothing but this process
    now.write_text("3.00 3.00 3.00 4/80 999\n")
    assert runs.busy_cores(now) == 3

    watch = ThroughputWatch()
    assert watch.note(0, 0.0) is None and watch.note(25, 10.0) is None  # 2.5 steps/s
    assert watch.note(50, 22.0) is None  # 2.1: noise
    said = watch.note(75, 52.0)  # 0.83 steps/s: collapsed
    assert (
        said is not None and "slowed from 2.5 steps/s to 1.20 s/step" in said and "OMP_NUM_THREADS=1" in said
    )
    assert watch.note(100, 120.0) is None  # said once


def test_every_run_setting_flag_is_a_discover_option_with_its_bounds():
    """The run settings are declared once (settings.RunSettings): discover's options come from them."""
    from ganzoo_directions.settings import RunSettings

    options = {opt: param for param in cli.commands["discover"].params for opt in param.opts}
    for name, flag in RunSettings.flags().items():
        param = options[flag.name]
        assert param.name == name
        if flag.low is not None and not flag.low_open:
            result = CliRunner().invoke(cli, ["discover", flag.name, str(flag.low - 1)])
            assert result.exit_code == 2 and flag.name in result.output, (flag.name, result.output)


def test_a_benchmark_variant_takes_every_result_setting_but_the_seed():
    from ganzoo_directions.benchmark import Variant
    from ganzoo_directions.settings import RESULT, VARIANT_SETTINGS, RunSettings

    assert set(VARIANT_SETTINGS) == set(RunSettings.names(RESULT)) - {"seed"}
    values = {int: "3", float: "0.5", str: "lenet"}
    text = ",".join(f"{key}={values[kind]}" for key, kind in VARIANT_SETTINGS.items())
    variant = Variant.parse(f"row=centroid:{text},deformator=ortho")
    assert variant.settings == {key: kind(values[kind]) for key, kind in VARIANT_SETTINGS.items()}
    assert variant.params == {"deformator": "ortho"}
