"""The clip message (`edge.clip/1`, on `<prefix>/<box>/clips`): the audio of one event or alert, with what it is.

Framing, the same over MQTT 5 and 3.1.1 (which carries no properties): the metadata as one line of compact
JSON (UTF-8; JSON escapes every newline inside a string, so the first newline ends it), a newline, then the
FLAC file's bytes, which start with `fLaC`. `mosquitto_sub` shows the metadata as the first line.

The metadata's `bytes` and `sha256` describe the FLAC bytes: the station tells a damaged or cut message from a
clip by them. Its `sample_rate` and `duration_s` are those the FLAC's STREAMINFO (its first metadata block)
declares, and the station holds the two to each other before it keeps a clip (`check_sound`): a few hundred
kilobytes of FLAC silence can hold hours of audio on eight channels, gigabytes once decoded. A clip the privacy
gate refused (speech in it) is still sent, with `refused` set and no audio, so that the ranger learns there was
audio but that it was not kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from edge.types import ClipSettled
from edge.wire.records import observation

CLIP_SCHEMA = "edge.clip/1"
FLAC_MAGIC = b"fLaC"
MAX_METADATA_BYTES = 65536  # a clip's metadata is a few hundred bytes: more is not a clip
MAX_CHANNELS = 2  # a box sends mono clips (edge.clips.store.encode_flac)
DURATION_TOLERANCE_S = 0.01  # a box rounds duration_s to the millisecond
STREAMINFO_END = 42  # the marker, the block's 4-byte header and STREAMINFO's 34 bytes


class ClipMessageError(ValueError):
    """A clip message that is not what a box sends: its reason, in words, without the payload."""


@dataclass(frozen=True)
class StreamInfo:
    """What a FLAC file's STREAMINFO declares of its audio."""

    sample_rate: int  # Hz
    channels: int
    total_samples: int  # per channel; 0 when the encoder did not know it (a stream it could not seek back in)

    @property
    def seconds(self) -> float:
        return self.total_samples / self.sample_rate


def clip_metadata(clip: ClipSettled, box: str) -> dict[str, object]:
    """What a clip is, as the station files it: its event's or alert's id and observation; the audio's own
    fields (bytes, sha256, sample rate, duration) are added when it is sent."""
    e = clip.subject
    return {
        "schema": CLIP_SCHEMA,
        "id": e.id,
        "kind": "event" if clip.alert_class is None else "alert",
        "box": box,
        **observation(e, e.label, e.confidence, e.model, e.model_version),
        "alert_class": clip.alert_class,
        "refused": clip.refused,
    }


def frame(metadata: Mapping[str, object], audio: bytes) -> bytes:
    """The message: `metadata` (which must describe `audio`: see `audio_fields`) and the FLAC bytes."""
    line = json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return line.encode("utf-8") + b"\n" + audio


def audio_fields(audio: bytes) -> dict[str, object]:
    """What the metadata says of the FLAC it carries: its size, sha256, sample rate and duration (None but the
    size for a refused clip). ClipMessageError when `audio` is not a FLAC file."""
    if not audio:
        return {"bytes": 0, "sha256": None, "sample_rate": None, "duration_s": None}
    info = stream_info(audio)
    return {
        "bytes": len(audio),
        "sha256": hashlib.sha256(audio).hexdigest(),
        "sample_rate": info.sample_rate,
        "duration_s": round(info.seconds, 3) if info.total_samples else None,
    }


def stream_info(audio: bytes) -> StreamInfo:
    """The STREAMINFO of FLAC bytes, read without decoding any audio; ClipMessageError when they do not begin
    with one (the FLAC format puts it first)."""
    if not audio.startswith(FLAC_MAGIC):
        raise ClipMessageError("audio is not FLAC (no fLaC marker)")
    if len(audio) < STREAMINFO_END or audio[4] & 0x7F != 0 or int.from_bytes(audio[5:8], "big") != 34:
        raise ClipMessageError("the FLAC does not begin with a STREAMINFO block")
    # 20 bits of sample rate, 3 of channels - 1, 5 of bits per sample - 1, 36 of samples per channel.
    fields = int.from_bytes(audio[18:26], "big")
    rate, channels, total = fields >> 44, (fields >> 41 & 0x7) + 1, fields & (1 << 36) - 1
    if rate == 0:
        raise ClipMessageError("the FLAC's STREAMINFO gives no sample rate")
    return StreamInfo(rate, channels, total)


def unframe(payload: bytes) -> tuple[dict, bytes]:
    """The metadata and the FLAC bytes of a message; ClipMessageError when it is not a whole, intact clip
    message (no metadata line, metadata that is not a JSON object of this schema, audio that is not FLAC or
    does not match its size and sha256)."""
    end = payload.find(b"\n", 0, MAX_METADATA_BYTES + 1)
    if end < 0:
        raise ClipMessageError(f"no metadata line within the first {MAX_METADATA_BYTES} bytes")
    try:
        metadata = json.loads(payload[:end].decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ClipMessageError(f"metadata is not JSON: {error}") from None
    if not isinstance(metadata, dict) or metadata.get("schema") != CLIP_SCHEMA:
        raise ClipMessageError(f"metadata is not an {CLIP_SCHEMA} object")
    audio = payload[end + 1 :]
    check_audio(metadata, audio)
    return metadata, audio


def check_audio(metadata: Mapping[str, object], audio: bytes) -> None:
    """ClipMessageError unless `audio` is what `metadata` says: none for a refused clip, else FLAC of the
    declared size and sha256."""
    if metadata.get("refused") is not None:
        if audio:
            raise ClipMessageError("a refused clip carries audio")
        return
    if not audio.startswith(FLAC_MAGIC):
        raise ClipMessageError("audio is not FLAC (no fLaC marker)")
    if metadata.get("bytes") != len(audio):
        raise ClipMessageError(f"audio is {len(audio)} bytes, the metadata says {metadata.get('bytes')!r}")
    digest = hashlib.sha256(audio).hexdigest()
    if metadata.get("sha256") != digest:
        raise ClipMessageError(f"audio sha256 {digest[:16]}... differs from the metadata's")


def check_sound(audio: bytes, sample_rate: int, duration_s: float) -> None:
    """ClipMessageError unless the FLAC `audio` declares at most MAX_CHANNELS channels, a known length, and the
    `sample_rate` and `duration_s` (within DURATION_TOLERANCE_S) its metadata says."""
    info = stream_info(audio)
    if info.channels > MAX_CHANNELS:
        raise ClipMessageError(f"the FLAC has {info.channels} channels; a clip has at most {MAX_CHANNELS}")
    if info.total_samples == 0:
        raise ClipMessageError("the FLAC does not declare its length (total samples unknown)")
    if info.sample_rate != sample_rate:
        raise ClipMessageError(f"the FLAC is at {info.sample_rate} Hz, the metadata says {sample_rate}")
    if abs(info.seconds - duration_s) > DURATION_TOLERANCE_S:
        raise ClipMessageError(f"the FLAC holds {info.seconds:.3f} s of audio, the metadata says {duration_s} s")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
