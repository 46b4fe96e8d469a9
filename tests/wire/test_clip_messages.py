"""The clip message: metadata line, then FLAC bytes; whatever is damaged on the way is told apart from a clip."""

import numpy as np
import pytest

from edge.clips.store import encode_flac
from edge.wire.clips import CLIP_SCHEMA, ClipMessageError, audio_fields, frame, unframe


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
