"""The replay job's progress bar: files and audio of the whole job, its speed against real time."""

from edge.app.progress import AudioColumn, SpeedColumn, job_progress


def rendered(bar, column) -> str:
    return column.render(bar.tasks[0]).plain


def test_the_bar_counts_files_audio_and_speed_of_the_whole_job():
    bar, task = job_progress(total_seconds=2 * 3600, files=240, shown=False)
    assert rendered(bar, AudioColumn()) == "0.0/2.0 h audio"
    assert rendered(bar, SpeedColumn()) == "", "no speed before any audio"
    bar.update(task, advance=1800, files_done=60)
    bar.tasks[0].start_time = bar.get_time() - 60  # half an hour of audio in the first minute
    assert rendered(bar, AudioColumn()) == "0.5/2.0 h audio"
    assert bar.tasks[0].fields["files_done"] == 60 and bar.tasks[0].fields["files"] == 240
    assert rendered(bar, SpeedColumn()) == "30x real time"


def test_a_short_job_counts_minutes():
    bar, _ = job_progress(total_seconds=150, files=3, shown=False)
    assert rendered(bar, AudioColumn()) == "0.0/2.5 min audio"
