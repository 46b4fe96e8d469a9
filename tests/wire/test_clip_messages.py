"""The clip message: metadata line, then FLAC bytes; whatever is damaged on the way is told apart from a clip,
and so is FLAC whose header declares other audio than the metadata says."""

import io

import numpy as np
import pytest
import soundfile as sf

from edge.clips.store import encode_flac
from edge.wire.clips import CLIP_SCHEMA, ClipMessageError, audio_fields, check_sound, frame, stream_info, unframe
from support.audio import silence, unknown_length


def flac(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return encode_flac((0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32), rate, {"title": "tone"})


def metadata(audio: bytes, **fields) -> dict:
    return {"schema": CLIP_SCHEMA, "id": "e1", "kind": "event", "box": "box-a", **audio_fields(audio), **fields}


def test_a_clip_comes_out_as_it_went_in():
    audio = flac()
    sent = metadata(audio, common_name="Line\nbreak", sample_rate=22050)  # JSON escapes the newline
    got, got_audio = unframe(frame(sent, audio))
    assert got == sent and got_audio == audio and got_audio.startswith(b"fLaC")


def test_a_refused_clip_carries_no_audio():
    got, audio = unframe(frame(metadata(b"", refused="speech"), b""))
    assert got["refused"] == "speech" and got["sha256"] is None and audio == b""


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p[:-10], "bytes"),  # cut short
        (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "sha256"),  # one bit flipped
        (lambda p: p.replace(b"fLaC", b"RIFF", 1), "FLAC"),
        (lambda p: p.replace(b"\n", b" ", 1), "metadata"),  # a later newline byte in the audio ends no JSON
        (lambda p: p.replace(CLIP_SCHEMA.encode(), b"edge.clip/9", 1), "edge.clip/1"),
        (lambda p: b"[1, NaN]\n" + p.split(b"\n", 1)[1], "not JSON"),
        (lambda p: b"\xff\xfe\n" + p.split(b"\n", 1)[1], "not JSON"),
        (lambda p: b"[" * 100_000 + b"\n", "no metadata line"),
    ],
)
def test_damage_is_named_not_taken_for_a_clip(damage, reason):
    audio = flac()
    with pytest.raises(ClipMessageError, match=reason):
        unframe(damage(frame(metadata(audio), audio)))


def test_a_refused_clip_with_audio_is_not_a_clip():
    audio = flac()
    with pytest.raises(ClipMessageError, match="refused"):
        unframe(frame(metadata(audio, refused="speech"), audio))


@pytest.mark.parametrize(("seconds", "channels", "rate"), [(2.0, 1, 22050), (0.5, 2, 48000), (3.0, 8, 8000)])
def test_the_streaminfo_is_read_as_soundfile_reads_it(seconds, channels, rate):
    audio = silence(seconds, channels, rate)
    info, told = stream_info(audio), sf.info(io.BytesIO(audio))
    assert (info.sample_rate, info.channels, info.total_samples) == (told.samplerate, told.channels, told.frames)
    assert audio_fields(audio) | {"sha256": None} == {
        "bytes": len(audio),
        "sha256": None,
        "sample_rate": rate,
        "duration_s": seconds,
    }


def test_a_flac_holding_other_audio_than_its_metadata_says_is_named_from_its_header():
    """Silence compresses to almost nothing: 8 channels or ten minutes of it are a few kilobytes that decode to
    hundreds of megabytes. The header says so, and nothing is decoded to find out."""
    check_sound(silence(5.0), 48000, 5.0)
    check_sound(silence(5.0), 48000, 5.004)  # a box rounds to the millisecond
    for audio, rate, seconds, reason in (
        (silence(5.0, channels=8), 48000, 5.0, "the FLAC has 8 channels; a clip has at most 2"),
        (silence(600.0), 48000, 5.0, "the FLAC holds 600.000 s of audio, the metadata says 5.0 s"),
        (silence(5.0), 16000, 5.0, "the FLAC is at 48000 Hz, the metadata says 16000"),
        (unknown_length(silence(5.0)), 48000, 5.0, "does not declare its length"),
        (b"fLaC" + bytes(100), 48000, 5.0, "does not begin with a STREAMINFO block"),
        (silence(5.0)[:30], 48000, 5.0, "does not begin with a STREAMINFO block"),
    ):
        assert len(audio) < 100_000
        with pytest.raises(ClipMessageError, match=reason):
            check_sound(audio, rate, seconds)
