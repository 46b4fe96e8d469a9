"""Identify a clip: the station's BirdNET on real recordings uploaded as bytes, the range filter, and every
kind of bad upload refused with its status and a message that names the problem."""

from __future__ import annotations

import io
import threading
from datetime import date

import numpy as np
import pytest
import soundfile as sf

from edge.station.identify import Identifier, IdentifyBusy, IdentifyError, IdentifyOptions
from edge.station.upload import UploadLimits
from support.paths import DATA, MODELS
from support.waiting import wait_for

SPINETAIL = "Cranioleuca erythrops"  # Red-faced Spinetail, the bird of maad_spinetail.wav (Colombia)
ASH_BROWED = "Cranioleuca curtata"  # Ash-browed Spinetail, of the Andes from Colombia to Bolivia
COLOMBIA = (5.0, -75.5)  # the Central Andes, Caldas
CUSCO = (-13.5, -72.0)  # southern Peru: the Ash-browed Spinetail's, not the Red-faced's
GERMANY = (50.1, 8.7)
QUEENSLAND = (-20.92, 149.44)
JUNE = date(2024, 6, 10)
NOT_SPECIES = {"Dog", "Engine", "Environmental", "Fireworks", "Gun", "Human non-vocal", "Human vocal", "Noise"}


@pytest.fixture(scope="module")
def identifier() -> Identifier:
    return Identifier(IdentifyOptions(models_dir=MODELS))


def recording(name: str) -> bytes:
    return (DATA / name).read_bytes()


def encoded(audio: np.ndarray, rate: int, format: str, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format=format, subtype=subtype)
    return out.getvalue()


def spinetail_audio() -> tuple[np.ndarray, int]:
    audio, rate = sf.read(DATA / "maad_spinetail.wav", dtype="float32")
    return audio, rate


def names(found) -> list[str]:
    return [i.scientific_name for i in found]


@pytest.mark.parametrize(
    "name, place, expected",
    [
        ("maad_spinetail.wav", COLOMBIA, SPINETAIL),
        ("opso_aru_1_CSWA_3s.wav", None, "Setophaga pensylvanica"),  # Chestnut-sided Warbler
        ("456440__inspectorj__bird-whistling-robin-single-13.hq.ogg", None, "Erithacus rubecula"),  # stereo OGG
        ("opso_birds_10s.wav", None, "Leiothlypis peregrina"),  # Tennessee Warbler
        ("curlew_call_1.wav", QUEENSLAND, "Burhinus grallarius"),  # 1.3 s: shorter than a window, padded
    ],
)
def test_a_recording_gives_its_species_first(identifier, name, place, expected):
    found = identifier.identify(recording(name), *(place or (None, None)), day=JUNE)
    assert found and found[0].scientific_name == expected
    confidences = [i.confidence for i in found]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.1 <= c <= 1 for c in confidences) and len(found) <= 10
    assert not {i.common_name for i in found} & NOT_SPECIES


def test_without_a_place_both_andean_spinetails_lead(identifier):
    """BirdNET hears the Red-faced Spinetail's song as the Ash-browed's (0.93) about as much as its own (0.92):
    the range filter, not the audio, tells them apart (test_range_filter...)."""
    found = identifier.identify(recording("maad_spinetail.wav"))
    assert set(names(found)[:2]) == {SPINETAIL, ASH_BROWED}
    assert found[0].common_name in ("Red-faced Spinetail", "Ash-browed Spinetail")


def test_range_filter_keeps_a_species_where_it_lives_and_drops_it_elsewhere(identifier):
    data = recording("maad_spinetail.wav")
    in_colombia = names(identifier.identify(data, *COLOMBIA, day=JUNE))
    in_peru = names(identifier.identify(data, *CUSCO, day=JUNE))
    in_germany = names(identifier.identify(data, *GERMANY, day=JUNE))
    assert in_colombia[0] == SPINETAIL
    assert in_peru[0] == ASH_BROWED and SPINETAIL not in in_peru
    assert SPINETAIL not in in_germany and ASH_BROWED not in in_germany


def test_speech_is_not_answered_as_a_species(identifier):
    """A guide's voice is what BirdNET's "Human vocal" hears; an identification answers animals only."""
    assert identifier.identify(recording("3436-172162-0000.hq.ogg")) == []


@pytest.mark.parametrize(
    "format, subtype", [("FLAC", None), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"), ("WAV", "FLOAT")]
)
def test_every_format_gives_the_same_top_species(identifier, format, subtype):
    audio, rate = spinetail_audio()
    found = identifier.identify(encoded(audio, rate, format, subtype), *COLOMBIA, day=JUNE)
    assert found[0].scientific_name == SPINETAIL and found[0].confidence > 0.8


def test_samples_that_are_not_numbers_are_silence(identifier):
    audio, rate = spinetail_audio()
    audio[: rate * 2] = np.nan
    audio[rate * 3 : rate * 4] = np.inf
    audio[rate * 5] = -np.inf
    found = identifier.identify(encoded(audio, rate, "WAV", "FLOAT"), *COLOMBIA, day=JUNE)
    assert found[0].scientific_name == SPINETAIL


def spinetail_as(format: str, subtype: str | None = None) -> bytes:
    return encoded(*spinetail_audio(), format, subtype)


def silence(seconds: float, rate: int = 48000, format: str = "FLAC") -> bytes:
    return encoded(np.zeros(int(seconds * rate), np.float32), rate, format)


BAD_UPLOADS = {
    "empty": (lambda: b"", 422, "empty"),
    "text": (lambda: b"species,confidence\nRed-faced Spinetail,0.9\n" * 50, 422, "not audio the station reads"),
    "random bytes": (lambda: bytes(np.random.default_rng(7).bytes(60_000)), 422, "not audio the station reads"),
    "truncated WAV": (lambda: recording("maad_spinetail.wav")[:800_000], 422, "truncated"),
    "WAV header alone": (lambda: recording("maad_spinetail.wav")[:44], 422, "truncated"),
    "WAV without data": (lambda: b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), 422, "not a readable WAV file"),
    "truncated FLAC": (lambda: spinetail_as("FLAC")[:100_000], 422, "damaged or cut short"),
    "truncated MP3": (lambda: spinetail_as("MP3", "MPEG_LAYER_III")[:50_000], 422, "cut short"),
    "AIFF": (lambda: spinetail_as("AIFF"), 422, "not audio the station reads"),
    "too short": (lambda: silence(0.2), 422, "at least 0.5 s"),
    "too long": (lambda: silence(130), 413, "at most 120 s"),
    "too large": (lambda: b"RIFF" + bytes(21 * 2**20), 413, "at most 20 MiB"),
    "sample rate 4 kHz": (lambda: silence(2, rate=4000, format="WAV"), 422, "sample rate of 4000 Hz"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_refused_with_its_reason(identifier, case):
    make, status, reason = BAD_UPLOADS[case]
    with pytest.raises(IdentifyError, match=reason) as refused:
        identifier.identify(make())
    assert refused.value.status == status
    assert "BytesIO" not in str(refused.value)  # libsndfile's name of the file object is no help to a person


@pytest.mark.parametrize(
    "latitude, longitude, reason",
    [(5.0, None, "both latitude and longitude"), (95.0, 10.0, "latitude 95.0"), (5.0, float("nan"), "longitude nan")],
)
def test_a_bad_place_is_refused(identifier, latitude, longitude, reason):
    with pytest.raises(IdentifyError, match=reason) as refused:
        identifier.identify(recording("opso_aru_1_CSWA_3s.wav"), latitude, longitude)
    assert refused.value.status == 422


def without_length(flac: bytes) -> bytes:
    """The FLAC stream as a streaming encoder writes it: its header declares no length (total samples 0)."""
    data = bytearray(flac)
    data[21] &= 0xF0  # STREAMINFO's bits 108-143: the total samples
    data[22:26] = bytes(4)
    return bytes(data)


def test_a_stream_of_unknown_length_is_limited_as_it_is_read(identifier):
    with pytest.raises(IdentifyError, match="longer than 120 s") as refused:
        identifier.identify(without_length(silence(125)))
    assert refused.value.status == 413
    found = identifier.identify(without_length(spinetail_as("FLAC")), *COLOMBIA, day=JUNE)
    assert found[0].scientific_name == SPINETAIL


def test_missing_models_make_the_service_unavailable(tmp_path):
    identifier = Identifier(IdentifyOptions(models_dir=tmp_path))
    with pytest.raises(IdentifyError) as refused:
        identifier.identify(recording("opso_aru_1_CSWA_3s.wav"))
    assert refused.value.status == 503 and str(tmp_path) not in str(refused.value)
    assert not identifier.loaded


class GatedUpload(io.BytesIO):
    """An upload whose audio is held back until `gate` opens: an analysis that stays running for as long
    as the test needs it to."""

    def __init__(self, data: bytes, gate: threading.Event):
        super().__init__(data)
        self.gate = gate

    def readinto(self, buffer) -> int:
        if self.tell() > 4096:
            self.gate.wait(timeout=120)
        return super().readinto(buffer)


def test_one_analysis_at_a_time_and_a_full_queue_is_told_busy():
    identifier = Identifier(IdentifyOptions(models_dir=MODELS, max_waiting=1))
    data, gate = recording("maad_spinetail.wav"), threading.Event()
    answers: dict[str, list] = {}

    def ask(name: str, upload) -> None:
        answers[name] = identifier.identify(upload, *COLOMBIA, day=JUNE)

    running = threading.Thread(target=ask, args=("running", GatedUpload(data, gate)))
    running.start()
    wait_for(lambda: identifier.queued == 1, what="the first identification runs")
    waiting = threading.Thread(target=ask, args=("waiting", data))
    waiting.start()
    wait_for(lambda: identifier.queued == 2, what="the second one waits")
    with pytest.raises(IdentifyBusy) as busy:
        identifier.identify(data)
    assert busy.value.status == 503 and busy.value.retry_after >= 1
    gate.set()
    running.join(timeout=120)
    waiting.join(timeout=120)
    assert names(answers["running"])[0] == names(answers["waiting"])[0] == SPINETAIL
    assert identifier.queued == 0
    assert names(identifier.identify(data, *COLOMBIA, day=JUNE))[0] == SPINETAIL  # free again


def test_limits_are_options():
    identifier = Identifier(IdentifyOptions(models_dir=MODELS, limits=UploadLimits(max_bytes=100 * 1024)))
    with pytest.raises(IdentifyError, match="the upload is 187.8 KiB; the station takes at most 100 KiB"):
        identifier.identify(recording("opso_aru_1_CSWA_3s.wav"))
    assert not identifier.loaded  # refused before a model was loaded
