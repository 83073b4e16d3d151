"""Progress of a training run on the console: a rich bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console


class RunConsole(Console):
    """A console whose reader may go away (``discover ... | head``, a closed terminal): from then on
    it is silent, instead of rich's default of ending the process with exit status 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.file.fileno())  # interpreter shutdown flushes into nothing, not an error


#: a schedule longer than this gets a note when the first speed is known (a real GAN on a CPU)
LONG_SCHEDULE_S = 24 * 3600


def format_rate(steps_per_s: float) -> str:
    """``"2.4 steps/s"``, or seconds per step below one step a second (``"52 s/step"``), so a slow run
    never reads ``0.0 steps/s``."""
    if steps_per_s >= 1:
        return f"{steps_per_s:.1f} steps/s"
    if steps_per_s <= 0:
        return "- s/step"
    seconds = 1 / steps_per_s
    return f"{seconds:.2f} s/step" if seconds < 10 else f"{seconds:.0f} s/step"


def format_duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"5.3 h"``, ``"63 days"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def schedule_note(step: int, total: int, steps_per_s: float) -> str | None:
    """A note when the steps left take longer than :data:`LONG_SCHEDULE_S` at the measured speed."""
    if steps_per_s <= 0:
        return None
    left = (total - step) / steps_per_s
    if left <= LONG_SCHEDULE_S:
        return None
    return (
        f"note: at {format_rate(steps_per_s)} the {total - step} steps left take about "
        f"{format_duration(left)} here; fewer --steps, or a GPU (docs/performance.md, docs/scaling.md). "
        "Ctrl-C saves a checkpoint; --resume continues"
    )


#: how the progress line names a method's statistics (TrainedMethod.statistics); others by their name
STAT_LABELS = {"acc": "RCA", "mae": "|eps err|"}
#: statistics logged but not shown (the cross-entropy is in the loss; reg is shown when non-zero)
HIDDEN_STATS = {"ce", "step", "steps_per_s"}


class ThroughputWatch:
    """Notices when training slows down to less than ``1 / factor`` of its best speed so far, measured
    between log lines (other processes came to compete for the cores: more threads than free cores
    then cost several times the CPU time), and says so once, with what helps."""

    def __init__(self, factor: float = 2.5) -> None:
        self.factor, self.best, self.said = factor, 0.0, False
        self.last: tuple[int, float] | None = None

    def note(self, step: int, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        previous, self.last = self.last, (step, now)
        if previous is None or step <= previous[0] or now <= previous[1]:
            return None
        rate = (step - previous[0]) / (now - previous[1])
        self.best = max(self.best, rate)
        if self.said or rate * self.factor > self.best:
            return None
        self.said = True
        return (
            f"note: training slowed from {format_rate(self.best)} to {format_rate(rate)}: other processes "
            "may be competing for the cores (on a busy machine one thread is faster: OMP_NUM_THREADS=1)"
        )


class RunNotes:
    """What a progress display says once beside its lines: how long the steps left take when that is
    more than a day (:func:`schedule_note`), and that training slowed (:class:`ThroughputWatch`)."""

    def __init__(self) -> None:
        self.scheduled, self.watch = False, ThroughputWatch()

    def after(self, step: int, total: int, steps_per_s: float, now: float | None = None) -> list[str]:
        notes = []
        if not self.scheduled:
            note = schedule_note(step, total, steps_per_s)
            self.scheduled = note is not None
            notes += [note] if note is not None else []
        slowed = self.watch.note(step, now)
        return notes + ([slowed] if slowed is not None else [])


def _format_stats(stats: Mapping[str, float]) -> str:
    parts = []
    first = {"loss": 0, "acc": 1}  # then the rest in the method's order
    for name, value in sorted(stats.items(), key=lambda item: first.get(item[0], 2)):
        if name in HIDDEN_STATS or (name == "reg" and not value):  # reg: centroid, orthogonality
            continue
        parts.append(f"{STAT_LABELS[name]} {value:.2f}" if name in STAT_LABELS else f"{name} {value:.3f}")
    return "  ".join(parts)


class RichReporter:
    """A rich progress bar: step, time left, steps/s first (they fit 80 columns), then the run's label and
    the latest statistics, which are cut with an ellipsis on a narrow terminal."""

    def __init__(self, console: Console, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.label = label
        kept = {"no_wrap": True}  # step, time left and rate stay whole; the label and statistics give way
        shrinks = {"no_wrap": True, "overflow": "ellipsis"}
        self.progress = Progress(
            MofNCompleteColumn(table_column=Column(**kept)),
            TimeRemainingColumn(table_column=Column(**kept)),
            TextColumn("{task.fields[rate]}", table_column=Column(**kept)),
            BarColumn(bar_width=12),
            TextColumn("[bold]{task.description}", table_column=Column(**shrinks, ratio=2)),
            TextColumn("{task.fields[stats]}", table_column=Column(**shrinks, ratio=3)),
            console=console,
            transient=False,
            expand=True,
        )
        self.task: Any = None
        self.total, self.notes = 0, RunNotes()

    def start(self, total_steps: int, first_step: int) -> None:
        self.total = total_steps
        self.progress.start()
        self.task = self.progress.add_task(
            self.label, total=total_steps, completed=first_step, rate="", stats=""
        )

    def advance(self, step: int, stats: Mapping[str, float] | None) -> None:
        fields = {}
        if stats is not None:
            fields = {"rate": format_rate(stats["steps_per_s"]), "stats": _format_stats(stats)}
            for note in self.notes.after(step, self.total, stats["steps_per_s"]):
                self.message(note)
        self.progress.update(self.task, completed=step, **fields)

    def message(self, text: str) -> None:
        self.progress.console.print(text)

    def finish(self) -> None:
        self.progress.stop()


class LineReporter:
    """Plain log lines (when output is not a terminal): at most one every ``min_interval`` seconds."""

    def __init__(self, console: Console, label: str, min_interval: float = 5.0) -> None:
        self.console, self.label, self.min_interval = console, label, min_interval
        self.total, self.last, self.notes = 0, 0.0, RunNotes()

    def start(self, total_steps: int, first_step: int) -> None:
        self.total = total_steps
        self.console.print(f"{self.label}: steps {first_step}..{total_steps}")

    def advance(self, step: int, stats: Mapping[str, float] | None) -> None:
        if stats is None:
            return
        now, rate = time.monotonic(), stats["steps_per_s"]
        notes = self.notes.after(step, self.total, rate, now)  # every log line counts, printed or not
        if now - self.last >= self.min_interval or step == self.total:
            self.last = now
            left = format_duration((self.total - step) / rate) if rate > 0 else "?"
            self.console.print(
                f"step {step}/{self.total}  {format_rate(rate)}  {left} left  " + _format_stats(stats),
                highlight=False,
                soft_wrap=True,
            )
        for note in notes:
            self.message(note)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def finish(self) -> None:
        pass


def console_reporter(console: Console, label: str) -> RichReporter | LineReporter:
    """A rich bar when ``console`` is a terminal, plain lines otherwise."""
    return RichReporter(console, label) if console.is_terminal else LineReporter(console, label)


class TaskBars:
    """Progress bars for stages of known length (evaluation): ``bars(label, total)`` adds a bar and
    returns ``advance(n)``. Use as a context manager; draws only on a terminal."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )

    def __enter__(self) -> TaskBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def __call__(self, label: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(label, total=total)
        return lambda n: self.progress.advance(task, n)


class CellsBar:
    """The benchmark's bar over its grid cells: ``with CellsBar(console, total) as progress:`` gives the
    ``progress(text)`` callback :func:`ganzoo_directions.benchmark.run_benchmark` calls; a text that
    starts with "done" advances it. Off a terminal each text is printed as a line instead."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(
            TextColumn("[bold]benchmark"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> Callable[[str], None]:
        self.bar.__enter__()
        return self.update

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(self, text: str) -> None:
        self.bar.update(self.task, description=text, advance=1 if text.startswith("done") else 0)
        if not self.console.is_terminal:
            self.console.print(text, highlight=False)
