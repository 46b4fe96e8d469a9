"""The progress bar of a replay job: files and audio hours done of the whole job, its speed and time left."""

from __future__ import annotations

from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text


class AudioColumn(ProgressColumn):
    """Audio hours analysed of the job's total."""

    def render(self, task: Task) -> Text:
        total = task.total or 0.0
        unit, size = ("h", 3600) if total >= 3600 else ("min", 60)
        return Text(f"{task.completed / size:.1f}/{total / size:.1f} {unit} audio")


class SpeedColumn(ProgressColumn):
    """Audio analysed per wall-clock time since the job started, as a multiple of real time."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        return Text(f"{task.completed / elapsed:.0f}x real time" if elapsed > 0 and task.completed > 0 else "")


def job_progress(total_seconds: float, files: int, shown: bool) -> tuple[Progress, TaskID]:
    """The bar and its one task; `files_done` counts the recordings whose runs are committed."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files_done]}/{task.fields[files]} files"),
        AudioColumn(),
        SpeedColumn(),
        TimeRemainingColumn(),
        disable=not shown,
        transient=True,
    )
    return bar, bar.add_task("replay", total=total_seconds, files_done=0, files=files)
