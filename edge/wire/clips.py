"""The clip message (`edge.clip/1`, on `<prefix>/<box>/clips`): the audio of one event or alert, with what it is.

Framing, the same over MQTT 5 and 3.1.1 (which carries no properties): the metadata as one line of compact
JSON (UTF-8; JSON escapes every newline inside a string, so the first newline ends it), a newline, then the
FLAC file's bytes, which start with `fLaC`. `mosquitto_sub` shows the metadata as the first line.

The metadata's `bytes` and `sha256` describe the FLAC bytes: the station tells a damaged or cut message from a
clip by them. A clip the privacy gate refused (speech in it) is still sent, with `refused` set and no audio,
so that the ranger learns there was audio but that it was not kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from edge.types import ClipSettled
from edge.wire.records import observation

CLIP_SCHEMA = "edge.clip/1"
FLAC_MAGIC = b"fLaC"
MAX_METADATA_BYTES = 65536  # a clip's metadata is a few hundred bytes: more is not a clip


class ClipMessageError(ValueError):
    """A clip message that is not what a box sends: its reason, in words, without the payload."""


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
    """What the metadata says of the audio it carries: its size and sha256 (None for a refused clip)."""
    return {"bytes": len(audio), "sha256": hashlib.sha256(audio).hexdigest() if audio else None}


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


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
