"""The run lifecycle and the inputs that must not poison a run (docs/reliability.md).

Each test is one way a run could be lost, clobbered or poisoned: interrupted at every stage, two
processes on one folder, changed flags on resume, stray temporary files, non-finite numbers, and
the messages a user gets for the machine's limits. In-process where the code path is the same
(`runs.py`, click's runner), a real process where a signal or a second process is the point.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save

from ganzoo_directions import defaults, runs
from ganzoo_directions.cli import cli
from ganzoo_directions.directions import FILE_NAME, DirectionSet
from ganzoo_directions.errors import DirectionFileError, RunFolderError
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.options import Option
from ganzoo_directions.reconstructors import RECONSTRUCTOR_FILE
from ganzoo_directions.runs import LOCK_FILE, RUN_FILE, RunFolder, RunRequest, execute, resume_request
from ganzoo_directions.training import CHECKPOINT_NAME, LOG_NAME, Trainer

from .helpers import invoke, run_cli, wait_until

SPRITES = ["--gen", "sprites", "-g", "image_size=32", "--directions", "4", "--batch", "4"]


def discover(*args: str) -> object:
    """``zoo-dirs discover`` in this process (click's runner)."""
    return CliRunner().invoke(cli, ["discover", *SPRITES, "--rca-pairs", "16", *args])


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def request(folder: Path, steps: int = 6, **settings: object) -> RunRequest:
    values = dict(
        num_directions=4, steps=steps, batch_size=4, run_dir=folder, checkpoint_every=3, log_every=2
    )
    values.update(settings)
    return RunRequest("sprites", "baseline", {"image_size": "32"}, None, {}, RunSettings(**values))


# -- runs that can always be finished ---------------------------------------------------------------
def test_resume_after_the_last_step_finishes_only_what_is_missing(registry, tmp_path):
    """Killed during the final evaluation: the checkpoint is at the last step, no direction file."""
    folder = tmp_path / "run"
    complete = execute(request(folder), rca_pairs=16)
    expected = complete.directions.directions.clone()
    for name in (FILE_NAME, runs.TRAVERSAL_FILE, RECONSTRUCTOR_FILE):
        (folder / name).unlink()
    before = files(folder)
    resumed = execute(resume_request(folder, {}), rca_pairs=16)
    assert torch.equal(resumed.directions.directions, expected)
    after = files(folder)
    assert {n: after[n] for n in (RUN_FILE, LOG_NAME)} == {n: before[n] for n in (RUN_FILE, LOG_NAME)}
    assert {FILE_NAME, runs.TRAVERSAL_FILE, RECONSTRUCTOR_FILE} <= set(after)
    assert "train_rca" in resumed.directions.metrics  # kept in the checkpoint, not lost with the loop


def resume_noting(folder: Path, given: dict | None = None) -> list[str]:
    """``--resume`` of ``folder`` in this process; returns the messages the run gave."""
    messages: list[str] = []
    again = resume_request(folder, given or {})
    again.settings.reporter.message = messages.append  # type: ignore[method-assign]
    execute(again, rca_pairs=16)
    return messages


def test_resume_of_a_finished_run_changes_nothing_and_a_missing_picture_is_drawn(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    before = files(folder)
    messages = resume_noting(folder)
    assert files(folder) == before and "nothing to do" in messages[-1]
    (folder / runs.TRAVERSAL_FILE).unlink()
    execute(resume_request(folder, {}), rca_pairs=16)
    after = files(folder)
    assert runs.TRAVERSAL_FILE in after
    assert {n: v for n, v in after.items() if n != runs.TRAVERSAL_FILE} == {
        n: v for n, v in before.items() if n != runs.TRAVERSAL_FILE
    }


def test_steps_on_resume_may_not_go_below_the_checkpoint(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    with pytest.raises(RunFolderError, match="fewer than the 6 steps"):
        resume_request(folder, {"steps": ("--steps", 3)})
    result = discover("--resume", "--out", str(folder), "--steps", "3")
    assert result.exit_code == 1 and "cannot be shortened" in result.output
    longer = execute(resume_request(folder, {"steps": ("--steps", 8)}), rca_pairs=16)
    assert longer.directions.spec["settings"]["steps"] == 8
    assert json.loads((folder / RUN_FILE).read_text())["settings"]["steps"] == 8


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_zero(registry, tmp_path):
    fresh = execute(request(tmp_path / "fresh"), rca_pairs=16)
    folder = tmp_path / "stopped"
    folder.mkdir()
    (folder / RUN_FILE).write_text(request(folder).to_json())  # all a pre-empted run left behind
    (folder / LOG_NAME).write_text('{"step": 2, "loss": 1.0}\n')  # a log line of the lost attempt
    resumed = execute(resume_request(folder, {}), rca_pairs=16)
    assert torch.equal(resumed.directions.directions, fresh.directions.directions)
    steps = [json.loads(line)["step"] for line in (folder / LOG_NAME).read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_ctrl_c_messages_say_how_to_go_on(registry, tmp_path, monkeypatch):
    folder = tmp_path / "run"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "build_generator", interrupt)  # during start-up: nothing written yet
    result = discover("--out", str(folder))
    assert result.exit_code == 130 and "nothing was saved" in result.output
    assert "checkpoint saved" not in result.output and not folder.exists()
    monkeypatch.undo()

    monkeypatch.setattr(Trainer, "train_step", lambda self: interrupt())  # run.json, no checkpoint
    result = discover("--out", str(folder))
    assert result.exit_code == 130 and "before the first checkpoint" in result.output
    assert "checkpoint saved" not in result.output
    monkeypatch.undo()
    result = discover("--resume", "--out", str(folder), "--steps", "4")
    assert result.exit_code == 0, result.output
    assert "starting the run again from step 0" in result.output
    assert (folder / FILE_NAME).is_file()


@pytest.mark.slow
def test_retry_loop_of_the_scaling_docs_survives_a_kill_before_the_first_checkpoint(tmp_path):
    """docs/scaling.md's loop for pre-emptible jobs, after a kill -9 before any checkpoint."""
    out = tmp_path / "job"
    exe = Path(sys.executable).with_name("zoo-dirs")
    args = [str(exe), "discover", *SPRITES, "--steps", "4000", "--checkpoint-every", "100000"]
    proc = subprocess.Popen([*args, "--out", str(out)], stderr=subprocess.DEVNULL)
    wait_until((out / LOG_NAME).exists)
    proc.kill()
    proc.wait(timeout=30)
    assert (out / RUN_FILE).is_file() and not (out / CHECKPOINT_NAME).exists()
    loop = (
        f'OUT={shlex.quote(str(out))}; RESUME=; if [ -f "$OUT/run.json" ]; then RESUME=--resume; fi; '
        f'{shlex.quote(str(exe))} discover --out "$OUT" $RESUME --steps 6 --rca-pairs 16'
    )
    done = subprocess.run(["bash", "-c", loop], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / FILE_NAME).is_file()


def test_stray_temporary_files_are_removed_on_the_next_start(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder, steps=3), rca_pairs=16)
    stray = folder / f".{CHECKPOINT_NAME}.k1ll3d.ganzoo.tmp"
    stray.write_bytes(b"half a checkpoint")
    mine = folder / ".notes.tmp"  # a user's own temporary file is not the project's to remove
    mine.write_text("keep me")
    execute(resume_request(folder, {"steps": ("--steps", 6)}), rca_pairs=16)
    assert not stray.exists() and mine.read_text() == "keep me"


def test_training_that_diverges_stops_with_one_line(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(
        Trainer, "train_step", lambda self: torch.full((len(self.method.statistics),), math.nan)
    )
    result = discover("--out", str(tmp_path / "run"), "--steps", "4", "--log-every", "2")
    assert result.exit_code == 1 and "training diverged by step 2" in result.output
    assert not (tmp_path / "run" / FILE_NAME).exists()


# -- folders that cannot be clobbered ---------------------------------------------------------------
def test_a_second_process_on_a_locked_folder_is_refused_with_the_holders_pid(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    before = files(folder)
    with RunFolder(folder).claim(resume=True):
        result = run_cli("discover", "--resume", "--out", str(folder), "--steps", "8")
        fresh = run_cli("discover", *SPRITES, "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert f"in use by another run (process {os.getpid()})" in result.stderr
    assert "Traceback" not in result.stderr and fresh.returncode == 1
    assert {n: v for n, v in files(folder).items() if n != LOCK_FILE} == {
        n: v for n, v in before.items() if n != LOCK_FILE
    }


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / LOCK_FILE).write_text(f"{dead.pid}\n")  # kill -9 leaves the pid, not the OS lock
    notes: list[str] = []
    with RunFolder(folder).claim(resume=True, message=notes.append):
        assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert notes == [f"note: took over the lock of process {dead.pid}, which is no longer running"]
    assert (folder / LOCK_FILE).read_text() == ""  # released cleanly


@pytest.mark.slow
def test_two_discover_processes_on_one_folder(tmp_path):
    """Both start at once on one --out: one runs, the other is refused; the folder is one run's."""
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("zoo-dirs")
    base = [str(exe), "discover", *SPRITES, "--steps", "30", "--rca-pairs", "16", "--out", str(out)]
    first = subprocess.Popen([*base, "--seed", "1"], stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*base, "--seed", "2"], stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300)[1] for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 1], outputs
    refused = outputs[[first.returncode, second.returncode].index(1)]
    assert "in use by another run" in refused or "already holds a run" in refused
    seed = json.loads((out / RUN_FILE).read_text())["settings"]["seed"]
    assert DirectionSet.load(out).spec["settings"]["seed"] == seed


def test_resume_refuses_flags_that_differ_from_the_run_naming_each(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    before = files(folder)
    result = discover("--resume", "--out", str(folder), "--seed", "1", "--lr", "0.001", "-p", "hidden=8")
    assert result.exit_code == 1
    for text in (
        "--seed 1 (the run has 0)",
        "--lr 0.001 (the run has 0.0001)",
        "-p hidden=8 (the run has 1024)",
    ):
        assert text in result.output
    result = discover("--resume", "--out", str(folder), "-g", "image_size=64", "--eps-max", "3")
    assert (
        "-g image_size=64 (the run has 32)" in result.output
        and "--eps-max 3.0 (the run has 6.0)" in result.output
    )
    assert files(folder) == before
    # what the run has anyway, and what may change, are accepted
    same = discover(
        "--resume", "--out", str(folder), "--seed", "0", "-g", "image_size=32", "--log-every", "5"
    )
    assert same.exit_code == 0, same.output


def test_resume_uses_the_runs_own_generator_not_the_default(registry, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    execute(request(folder, steps=3), rca_pairs=16)
    monkeypatch.setattr(defaults, "GENERATOR", "not-installed")  # the run says which it used
    result = CliRunner().invoke(cli, ["discover", "--resume", "--out", str(folder), "--steps", "4"])
    assert result.exit_code == 0, result.output


def test_fresh_runs_refuse_folders_holding_anything(registry, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "mine.txt").write_text("precious")
    result = discover("--out", str(folder), "--steps", "2")
    assert result.exit_code == 1 and "already holds other files" in result.output
    assert (folder / "mine.txt").read_text() == "precious"
    with pytest.raises(RunFolderError, match=r"no run\.json"):
        resume_request(folder, {})


# -- inputs that cannot poison ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--eps-max", "nan"], "not a finite number"),
        (["--eps-max", "inf"], "not a finite number"),
        (["--lr", "inf"], "not a finite number"),
        (["--lr", "nan"], "not a finite number"),
        (["--method", "centroid-ortho", "-p", "shift_weight=nan"], "must be a finite number"),
        (["--method", "centroid-ortho", "-p", "hidden=-5"], "must be at least 1"),
        (["-p", "probes=1"], "must be at least 2"),  # the default method's
        (["--device", "gpu0"], "unknown device 'gpu0'"),
        (["--device", "meta"], "unknown device 'meta'"),
        (["--seed", "100000000000000000000000"], "0<=x<=9223372036854775807"),
        (["--steps", "99999999999999999999"], "--steps"),
        (["-g", "image_size=100000"], "must be at most 1024"),
        (["--weights", "/etc/hostname"], "takes no weights"),  # a generator without weights refuses them
    ],
)
def test_bad_numbers_are_refused_before_anything_runs(registry, tmp_path, args, expected):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["discover", "--gen", "sprites", "--out", str(out), *args])
    assert result.exit_code != 0 and expected in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_every_command_takes_the_same_seeds_and_devices(run, tmp_path):
    for args, expected in (
        (["--seed", "100000000000000000000000"], "0<=x<=9223372036854775807"),
        (["--device", "meta"], "unknown device 'meta'"),
    ):
        result = invoke("traverse", str(run), "--out", str(tmp_path / "t.png"), *args)
        assert result.returncode == (2 if "--seed" in args else 1), result.stderr
        assert expected in result.stderr and not (tmp_path / "t.png").exists()


def test_centroid_weight_nan_is_refused(registry, tmp_path):
    result = discover("--method", "centroid", "-p", "centroid_weight=nan", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and "must be a finite number" in result.output


def test_option_bounds():
    option = Option(0.5, "a weight", minimum=0.0, maximum=1.0, exclusive_minimum=True)
    assert option.convert("1") == 1.0 and option.describe_range() == "(0, 1]"
    for bad, why in (("0", "greater than 0"), ("1.5", "at most 1"), ("nan", "finite"), ("-inf", "finite")):
        with pytest.raises(ValueError, match=why):
            option.convert(bad)
    assert Option(3, "n", minimum=1).convert(2) == 2  # the Python API is checked too
    with pytest.raises(ValueError):
        Option(3, "n", minimum=1).convert(0)


def write_set(path: Path, directions: torch.Tensor, spec: object = None) -> None:
    text = spec if isinstance(spec, RawSpec) else json.dumps(spec or {})
    metadata = {"format": "ganzoo-directions", "format_version": "1", "spec": text}
    path.write_bytes(save({"directions": directions}, metadata=metadata))


class RawSpec(str):
    """A spec written as this text, not JSON-encoded (what a crafted file holds)."""


@pytest.mark.parametrize(
    ("directions", "spec", "expected"),
    [
        (torch.full((4, 8), math.nan), None, "NaN or infinite"),
        (torch.tensor([[math.inf] * 8] * 4), None, "NaN or infinite"),
        (torch.ones(4, 8, dtype=torch.int64), None, "floating point"),
        (torch.ones(0, 8), None, "non-empty"),
        (torch.ones(4, 8), [1, 2], "must be a JSON object"),
        (torch.ones(4, 8), "text", "must be a JSON object"),
        # crafted headers that used to crash inside load or use (issue 23)
        (torch.ones(4, 8), RawSpec("[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (torch.ones(4, 8), {"a": [[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}, "nests deeper than 16"),
        (torch.ones(4, 8), {"labels": {"²": "x"}}, "direction indices"),
        (torch.ones(4, 8), {"labels": {"4": "x"}}, "direction indices"),
        (torch.ones(4, 8), {"deformator": 3}, "'deformator' must be an object"),
        (torch.ones(4, 8), {"generator": 3}, "'generator' must be an object"),
        (torch.ones(4, 8), {"generator": {"name": 3}}, "'generator.name' must be text"),
        (torch.ones(4, 8), {"settings": {"eps_max": "big"}}, "'settings.eps_max' must be a number"),
        (torch.ones(4, 8), {"settings": {"eps_max": 1e308}}, "'settings.eps_max' must be a number"),
        (torch.ones(4, 8), {"settings": {"seed": True}}, "'settings.seed' must be a number"),
        (torch.ones(4, 8), {"ranking": [1, 2]}, "'ranking' must be an object"),
        (torch.ones(4, 8), {"ranking": {"order": [0, 1, 2, "x"]}}, "'ranking.order' must list"),
        (torch.ones(4, 8), {"metrics": {"rca": math.nan}}, "recorded numbers are finite"),
        (torch.ones(4, 8), {"metrics": {"mig": 1e308}}, "recorded numbers are finite"),
        (torch.ones(4, 8), {"plugins": [3]}, "'plugins' must be a list of distribution names"),
    ],
)
def test_direction_files_that_would_poison_are_refused(tmp_path, directions, spec, expected):
    path = tmp_path / FILE_NAME
    write_set(path, directions, spec)
    with pytest.raises(DirectionFileError, match=expected):
        DirectionSet.load(path)
    result = CliRunner().invoke(cli, ["traverse", str(path), "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 1 and expected.split()[0] in result.output
    assert not (tmp_path / "g.png").exists()


def test_a_float64_set_loads_and_is_used_in_float32(tmp_path):
    write_set(tmp_path / FILE_NAME, torch.eye(8, dtype=torch.float64)[:4])
    dset = DirectionSet.load(tmp_path)
    assert dset.directions.dtype == torch.float32
    assert dset.apply(torch.zeros(2, 8), 1, 2.0).dtype == torch.float32


def test_a_non_finite_set_is_never_saved(tmp_path):
    with pytest.raises(DirectionFileError, match="refusing to save"):
        DirectionSet(torch.full((2, 8), math.nan)).save(tmp_path / FILE_NAME)
    assert not (tmp_path / FILE_NAME).exists()


# -- one line instead of a traceback ----------------------------------------------------------------
def test_bad_out_folders_are_one_line(registry, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out in (a_file / "sub", a_file, Path("/proc/no-such-dir/run")):
        result = discover("--out", str(out), "--steps", "2")
        assert result.exit_code in (1, 2), result.output  # 2: click's own check of --out
        assert result.exception is None or isinstance(result.exception, SystemExit), out
        assert "Traceback" not in result.output


def test_disk_full_and_out_of_memory_are_one_line(registry, tmp_path, monkeypatch):
    from ganzoo_directions import files

    def full(fd):  # the disk fills at the first write's flush: the OS error names no file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    result = discover("--out", str(tmp_path / "run"), "--steps", "2")
    assert result.exit_code == 1 and "no space left on device" in result.output
    assert str(tmp_path / "run") in result.output  # the file is named by the writer, not the test
    monkeypatch.undo()

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(runs, "execute", oom)
    result = discover("--out", str(tmp_path / "run2"), "--steps", "2")
    assert result.exit_code == 1 and "out of memory: lower --batch" in result.output
    assert "(Tried to allocate 20.00 GiB)" in result.output  # the size in full, however long


def test_out_of_memory_names_the_options_that_asked_for_it(run, tmp_path, monkeypatch):
    from ganzoo_directions import traversal

    def oom(*args, **kwargs):
        raise RuntimeError(
            "DefaultCPUAllocator: not enough memory: you tried to allocate 4000000000000 bytes."
        )

    monkeypatch.setattr(traversal, "save_traversal", oom)
    result = invoke("traverse", str(run), "--out", str(tmp_path / "t.png"))
    assert result.returncode == 1 and "out of memory: lower --samples, --steps / --frames" in result.stderr
    assert "--batch" not in result.stderr and "allocate 4000000000000 bytes" in result.stderr
    # what asked for the memory is bounded before any work: no render of 100,000 samples
    result = invoke("traverse", str(run), "--samples", "100000", "--out", str(tmp_path / "t.png"))
    assert (
        result.returncode == 1
        and "asks for 11,200,000 images, at most 4,096: lower --samples" in result.stderr
    )
    for option in (["-g", "latent_dim=1000000000"], ["-p", "hidden=1000000000"]):
        result = discover("--gen", "sprites", "--method", "two-shift", "--out", str(tmp_path / "r"), *option)
        assert result.exit_code != 0 and "must be at most" in result.output, result.output


def test_garbage_weights_never_suggest_weights_only_false(registry, tmp_path):
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"\x80\x02garbage" * 50)
    args = ["discover", "--gen", "sngan", "--weights", str(garbage), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "weights_only=False" not in result.output
    assert "not a readable weights file" in result.output


def test_next_commands_quote_paths_that_need_it(registry, tmp_path):
    out = tmp_path / "my runs" / "été"
    result = discover("--out", str(out), "--steps", "2")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "zoo-dirs traverse" in line)
    assert shlex.split(line)[2] == str(out)


def test_printed_next_commands_run_as_pasted(registry, tmp_path, monkeypatch):
    """`--out -x` and a one-direction run: every printed command works when pasted; a line break in
    --out is refused before anything is created (the commands could not be pasted)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "discover",
            *SPRITES[:-4],
            "--method",
            "centroid-ortho",
            "--directions",
            "1",
            "--batch",
            "4",
            "--steps",
            "2",
            "--out",
            "-x",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    commands = [line.strip() for line in lines[lines.index("next:") + 1 :]]
    assert commands and all("consecutive" not in c for c in commands)  # it needs two directions
    for command in commands:
        pasted = invoke(*shlex.split(command)[1:])
        assert pasted.returncode == 0, (command, pasted.stderr)
    result = discover("--out", str(tmp_path / "a\nb"), "--steps", "2")
    assert result.exit_code == 1 and "holds a control character" in result.output
    assert not (tmp_path / "a\nb").exists()


def test_typo_in_a_local_path_is_not_sent_to_the_hub_as_is(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a real process: huggingface_hub latches HF_HUB_OFFLINE when first imported
    result = run_cli("evaluate", "runs/frist", env={"HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "runs/frist: no such local folder" in result.stderr
    result = CliRunner().invoke(cli, ["evaluate", "not a/repo id"])
    assert result.exit_code == 1 and "no such run folder or file" in result.output


def test_hub_messages_name_the_real_cause(monkeypatch):
    from ganzoo_directions.hub import HubError, hub_errors, parse_repo_ref

    with pytest.raises(HubError, match=r"no space left on device .*HF_HOME"), hub_errors("pull", "a/b"):
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/blob")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError) as info, hub_errors("push", "a/b"):
        raise ConnectionError("offline mode is enabled")
    assert "unset it" in str(info.value) and "use HF_HUB_OFFLINE=1" not in str(info.value)
    for bad in ("alice/my set", "alice", "a/b/c", "-a/b", "alice/..", " alice/x"):
        with pytest.raises(HubError, match="not a Hub repo id"):
            parse_repo_ref(bad)
    assert parse_repo_ref("alice/sprites-dirs.v2@main") == ("alice/sprites-dirs.v2", "main")


def test_resume_with_interrupt_during_the_final_evaluation_in_a_real_process(tmp_path):
    """SIGINT after the last step (during the final RCA): --resume then finishes the run."""
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("zoo-dirs")
    # the paper's centroid (an MLP deformator) and millions of pairs: the final RCA outlasts the signal
    slow = ["--method", "centroid", "--rca-pairs", "4000000"]
    args = [str(exe), "discover", *SPRITES, "--steps", "4", *slow, "--out", str(out)]
    # the child starts with Ctrl-C at its default, as from a terminal: in the full suite an earlier
    # test leaves SIGINT ignored in the pytest process, and children inherit an ignored signal
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)

    def trained_to_the_end() -> bool:
        checkpoint = out / CHECKPOINT_NAME
        return checkpoint.exists() and torch.load(checkpoint, weights_only=True)["step"] == 4

    wait_until(trained_to_the_end)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved at step 4" in stderr and "Traceback" not in stderr
    result = invoke("discover", "--resume", "--out", str(out), "--rca-pairs", "16")
    assert result.returncode == 0, result.stderr
    assert (out / FILE_NAME).is_file() and "resuming" not in result.stderr


def test_evaluate_writes_metrics_json_only_after_the_direction_file(registry, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    execute(request(folder, steps=2), rca_pairs=16)
    before = files(folder)

    def full(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(DirectionSet, "save", full)
    result = CliRunner().invoke(cli, ["evaluate", str(folder), "--metrics", "rca", "--samples", "16"])
    assert result.exit_code == 1 and "no space left on device" in result.output
    after = files(folder)
    after.pop(".directions.safetensors.lock", None)  # the writers' lock, taken for the write that failed
    assert after == before and not (folder / "metrics.json").exists()


def test_evaluate_of_a_set_for_other_weights_offers_no_flag_it_lacks(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder, steps=2), rca_pairs=16)
    dset = DirectionSet.load(folder)
    dset.spec["generator"]["fingerprint"] = "0" * 64
    dset.save(folder)
    result = CliRunner().invoke(cli, ["evaluate", str(folder), "--metrics", "rca", "--samples", "16"])
    assert result.exit_code == 1 and "made for" in result.output
    assert "--allow-mismatch" not in result.output


def test_a_set_for_a_generator_that_is_not_installed_names_the_distribution(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder, steps=2), rca_pairs=16)
    dset = DirectionSet.load(folder)
    dset.spec["generator"]["name"] = "stylegan3"
    dset.spec["plugins"] = ["ganzoo-directions-stylegan3"]
    dset.save(folder)
    result = CliRunner().invoke(cli, ["traverse", str(folder), "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 1 and "'stylegan3', which is not installed" in result.output
    assert "plugin distribution(s) ganzoo-directions-stylegan3: names from the file" in result.output
    assert "pip install" not in result.output  # a name from a file is never a command to run
    # a crafted set: install advice never carries what a file says (a package, an index URL)
    dset.spec["plugins"] = ["evil-package --index-url http://evil.example/simple"]
    dset.save(folder)
    result = CliRunner().invoke(cli, ["traverse", str(folder), "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 1 and "evil" not in result.output and "install the plugin" in result.output
    # a first-party generator's distribution is known: that one is a command
    dset.spec["generator"]["name"], dset.spec["plugins"] = "biggan", ["evil-package"]
    dset.save(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.delitem(runs.get_registry().generators, "biggan")
        result = CliRunner().invoke(cli, ["traverse", str(folder), "--out", str(tmp_path / "g.png")])
    assert "pip install ganzoo-directions-biggan" in result.output and "evil" not in result.output


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(registry, tmp_path):
    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    target = tmp_path / "precious.txt"
    target.write_text("do not truncate me\n")
    (folder / LOCK_FILE).unlink()
    (folder / LOCK_FILE).symlink_to(target)  # planted: discover --resume used to empty the target
    with pytest.raises(RunFolderError, match="symbolic link"), RunFolder(folder).claim(resume=True):
        pass
    assert target.read_text() == "do not truncate me\n"


def test_a_torn_last_log_line_is_dropped_on_resume(registry, tmp_path):
    """A kill mid-write leaves half a JSON line at the end of log.jsonl: resume must not choke on it."""
    folder = tmp_path / "run"
    execute(request(folder, steps=4), rca_pairs=16)
    log = folder / LOG_NAME
    whole = log.read_text()
    log.write_text(whole + '{"step": 4, "loss": 1.2')  # torn: no closing brace, no newline
    resumed = execute(resume_request(folder, {"steps": ("--steps", 6)}), rca_pairs=16)
    assert resumed.directions.spec["settings"]["steps"] == 6
    lines = log.read_text().splitlines()
    assert lines[: len(whole.splitlines())] == whole.splitlines()
    assert all(json.loads(line)["step"] <= 6 for line in lines)  # every line whole again


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_checkpoint_like_ctrl_c(stop, tmp_path):
    """A scheduler's SIGTERM or a closed terminal's SIGHUP mid-training: a checkpoint at the step
    reached, the resume line, exit 130; --resume continues from there."""
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("zoo-dirs")
    args = [str(exe), "discover", *SPRITES, "--steps", "100000", "--checkpoint-every", "100000"]
    args += ["--log-every", "1", "--out", str(out)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    assert wait_until(
        lambda: (out / LOG_NAME).is_file() and len((out / LOG_NAME).read_text().splitlines()) >= 3
    )
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved at step" in stderr and "Traceback" not in stderr
    step = torch.load(out / CHECKPOINT_NAME, weights_only=True)["step"]
    assert step >= 3


@pytest.mark.slow
def test_a_closed_output_pipe_never_ends_a_run(tmp_path):
    """`zoo-dirs discover ... 2>&1 | head -2`: the reader goes away, the run finishes and writes its set."""
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("zoo-dirs")
    args = [str(exe), "discover", *SPRITES, "--steps", "60", "--log-every", "1", "--out", str(out)]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` exits
    assert proc.wait(timeout=300) == 0
    assert (out / FILE_NAME).is_file() and DirectionSet.load(out).spec["settings"]["steps"] == 60


def test_a_run_written_by_a_newer_version_says_so(registry, tmp_path):
    """A run.json with settings this version does not know is not "damaged": it says to upgrade."""
    folder = tmp_path / "run"
    execute(request(folder, steps=2), rca_pairs=16)
    data = json.loads((folder / RUN_FILE).read_text())
    data["settings"]["future_knob"] = 3
    (folder / RUN_FILE).write_text(json.dumps(data))
    result = invoke("discover", "--resume", "--out", str(folder))
    assert (
        result.returncode == 1
        and "newer ganzoo-directions" in result.stderr
        and "future_knob" in result.stderr
    )


def test_a_finished_run_whose_checkpoint_was_deleted_is_kept(registry, tmp_path):
    """Deleting checkpoint.pt of a finished run no longer retrains it from step 0 (which lost the
    labels, the log and the set): --resume has nothing to do, and training longer is refused."""
    from ganzoo_directions.directions import update_labels

    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    update_labels(folder, {0: "zoom"})
    (folder / CHECKPOINT_NAME).unlink()
    before = files(folder)
    messages = resume_noting(folder)
    assert files(folder) == before and "nothing to do" in messages[-1]
    with pytest.raises(RunFolderError, match="cannot train to 8"):
        execute(resume_request(folder, {"steps": ("--steps", 8)}), rca_pairs=16)
    assert files(folder) == before and DirectionSet.load(folder).labels == {0: "zoom"}


def test_training_longer_keeps_labels_and_drops_the_stale_evaluation(registry, tmp_path):
    """--resume --steps N replaces the set: its labels carry over (said), and metrics.json, which
    measured the shorter run, is removed instead of contradicting the new file."""
    from ganzoo_directions.directions import update_labels
    from ganzoo_directions.evaluation import EvalOptions, evaluate

    folder = tmp_path / "run"
    execute(request(folder), rca_pairs=16)
    update_labels(folder, {1: "hair"})
    evaluate(folder, EvalOptions(metrics=("rca",), samples=16))
    assert (folder / "metrics.json").is_file()
    messages = resume_noting(folder, {"steps": ("--steps", 8)})
    dset = DirectionSet.load(folder)
    assert dset.spec["settings"]["steps"] == 8 and dset.labels == {1: "hair"}
    assert not (folder / "metrics.json").exists()
    assert any("kept 1 label" in m for m in messages) and any("removed metrics.json" in m for m in messages)


@pytest.mark.slow
def test_a_checkpoint_write_that_fails_is_one_line_naming_the_file(tmp_path):
    """A full disk while torch serialises a checkpoint used to end in torch's ~70-line traceback. The
    write fails for real here: the process may write no file larger than 48 KiB (RLIMIT_FSIZE), which
    the checkpoint is and run.json and the log are not."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))

    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("zoo-dirs")
    args = [str(exe), "discover", *SPRITES, "--method", "centroid-ortho", "--steps", "4"]  # a reconstructor
    args += ["--checkpoint-every", "2", "--out", str(out)]  # to checkpoint: more than 48 KiB
    result = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"Error: File too large ({out / CHECKPOINT_NAME})", result.stderr
    assert not list(out.glob("*.ganzoo.tmp")) and not (out / CHECKPOINT_NAME).exists()


def test_a_truncated_reconstructor_is_one_line_in_evaluate(registry, tmp_path):
    out = tmp_path / "run"
    assert discover("--out", str(out), "--steps", "2", "--method", "baseline").exit_code == 0
    path = out / RECONSTRUCTOR_FILE
    path.write_bytes(path.read_bytes()[:1000])  # what a kill mid-copy leaves
    result = invoke("evaluate", str(out), "--metrics", "rca", "--samples", "16")
    assert result.returncode == 1 and "not a reconstructor this project wrote" in result.stderr
    assert str(path) in result.stderr and "Traceback" not in result.stderr


def test_sizes_read_from_a_direction_file_are_bounded_before_allocating(registry, tmp_path):
    """A crafted MLP deformator whose config asks for a hidden width of 10^6 (the tensors hold 16)
    used to allocate gigabytes before load_state_dict noticed; now the sizes are checked first."""
    out = tmp_path / "run"
    assert (
        discover("--out", str(out), "--steps", "2", "--method", "two-shift", "-p", "hidden=16").exit_code == 0
    )
    dset = DirectionSet.load(out)
    spec = dict(dset.spec, deformator={**dset.deformator.config(), "hidden": 1_000_000})
    tensors = {"directions": dset.directions}
    tensors.update({f"deformator.{k}": v for k, v in dset.deformator.state_dict().items()})
    metadata = {"format": "ganzoo-directions", "format_version": "1", "spec": json.dumps(spec)}
    (out / FILE_NAME).write_bytes(save(tensors, metadata=metadata))
    with pytest.raises(DirectionFileError, match="deformator sizes disagree"):
        DirectionSet.load(out)


def test_resume_keeps_the_runs_rca_pairs(registry, tmp_path):
    out = tmp_path / "run"
    started = discover("--method", "centroid-ortho", "--out", str(out), "--steps", "2", "--rca-pairs", "24")
    assert started.exit_code == 0  # a method with a reconstructor: RCA is measured with it
    result = CliRunner().invoke(cli, ["discover", "--resume", "--out", str(out), "--steps", "4"])
    assert result.exit_code == 0, result.output
    assert DirectionSet.load(out).metrics["rca_pairs"] == 24  # not the 2,000 of a flag left out
    result = CliRunner().invoke(
        cli, ["discover", "--resume", "--out", str(out), "--steps", "6", "--rca-pairs", "8"]
    )
    assert result.exit_code == 0 and DirectionSet.load(out).metrics["rca_pairs"] == 8


def test_a_run_that_trained_nothing_resumes_with_other_settings(registry, tmp_path, monkeypatch):
    """Out of memory at the first step (before any checkpoint): `--resume --batch 4` starts it again
    with the smaller batch instead of refusing the flag, and a fresh run is told to pass --resume."""
    out = tmp_path / "run"
    real_step = Trainer.train_step

    def oom(self):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 80000000000 bytes.")

    monkeypatch.setattr(Trainer, "train_step", oom)
    result = discover("--out", str(out), "--steps", "4", "--batch", "8")
    assert result.exit_code == 1 and "out of memory: lower --batch" in result.output
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert "pass --resume" in discover("--out", str(out), "--steps", "4").output
    result = CliRunner().invoke(cli, ["discover", "--resume", "--out", str(out), "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert "starting the run again from step 0 with --batch 4 (the run has 8)" in result.output
    assert DirectionSet.load(out).spec["settings"]["batch_size"] == 4
    assert json.loads((out / RUN_FILE).read_text())["settings"]["batch_size"] == 4
    # once it has trained, settings are the run's again
    result = CliRunner().invoke(cli, ["discover", "--resume", "--out", str(out), "--batch", "2"])
    assert result.exit_code == 1 and "cannot resume" in result.output
