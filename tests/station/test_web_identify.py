"""Identify a clip over HTTP: `POST /api/identify` of a real `edge station --http`, the identify page in
Debian's chromium recording a bundled recording as its microphone, and the station answering other pages
while an identification runs."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import requests
import soundfile as sf

from edge.station.identify import Identifier, IdentifyOptions
from edge.station.web.identify import RECORD_SECONDS
from support.broker import free_port
from support.browser import browser, screenshot
from support.paths import DATA, MODELS
from support.processes import StationProcess
from support.waiting import wait_for
from support.web import sign_in, station_pages, users

SPINETAIL = "Cranioleuca erythrops"
COLOMBIA = {"latitude": "5.0", "longitude": "-75.5", "date": "2024-06-10"}


def spinetail() -> bytes:
    return (DATA / "maad_spinetail.wav").read_bytes()


def encoded(audio: np.ndarray, rate: int, format: str) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format=format)
    return out.getvalue()


@pytest.fixture
def station(broker, tmp_path):
    """A real `edge station --http` on a free port; its URL."""
    port = free_port()
    process = StationProcess(broker, tmp_path / "station.sqlite", "--http", f"127.0.0.1:{port}")
    try:
        process.wait_log("web_started")
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: answers(url), what="the station's pages")
        yield url
    finally:
        assert process.terminate() == 0


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=30).status_code == 200
    except requests.ConnectionError:
        return False


def identify(url: str, data: bytes, name: str = "clip.wav", **fields) -> requests.Response:
    return requests.post(url + "api/identify", files={"file": (name, data)}, data=fields, timeout=300)


def test_the_api_answers_the_species_of_an_upload(station):
    answer = identify(station, spinetail(), **COLOMBIA)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    species = answer.json()["species"]
    assert species[0]["scientific_name"] == SPINETAIL and species[0]["common_name"] == "Red-faced Spinetail"
    assert set(species[0]) == {"scientific_name", "common_name", "confidence"}
    assert [s["confidence"] for s in species] == sorted((s["confidence"] for s in species), reverse=True)
    flac = encoded(*sf.read(DATA / "maad_spinetail.wav", dtype="float32"), "FLAC")
    assert identify(station, flac, "clip.flac", **COLOMBIA).json()["species"][0]["scientific_name"] == SPINETAIL
    unfiltered = identify(station, spinetail()).json()["species"]  # no place: the Ash-browed Spinetail may lead
    assert SPINETAIL in [s["scientific_name"] for s in unfiltered[:2]]


def chunked(data: bytes, boundary: str = "edge-test-boundary"):
    """A multipart body sent in chunks, so that it declares no length."""
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
    for start in range(0, len(data), 1 << 20):
        yield data[start : start + (1 << 20)]
    yield f"\r\n--{boundary}--\r\n".encode()


def test_the_api_refuses_bad_uploads_with_a_reason(station):
    silence = np.zeros(48000 * 130, np.float32)
    cases = [
        (identify(station, b""), 422, "empty"),
        (identify(station, b"just some text, not a recording\n" * 20, "notes.txt"), 422, "not audio"),
        (identify(station, spinetail()[:500_000]), 422, "truncated"),
        (identify(station, encoded(silence, 48000, "FLAC"), "long.flac"), 413, "at most 120 s"),
        (identify(station, b"RIFF" + bytes(21 * 2**20)), 413, "larger than the 20 MiB"),
        (requests.post(station + "api/identify", data={"latitude": "5"}), 422, "form field 'file'"),
        (identify(station, spinetail(), latitude="north", longitude="3"), 422, "latitude 'north' is not a number"),
        (identify(station, spinetail(), latitude="5"), 422, "both latitude and longitude"),
        (identify(station, spinetail(), latitude="95", longitude="3"), 422, "latitude 95.0"),
        (identify(station, spinetail(), **{**COLOMBIA, "date": "10.06.2024"}), 422, "YYYY-MM-DD"),
        (identify(station, spinetail(), **{**COLOMBIA, "date": "2024-13-01"}), 422, "YYYY-MM-DD"),
        (
            requests.post(
                station + "api/identify",
                data=b"--x\r\nnot a part header\r\n",
                headers={"content-type": "multipart/form-data; boundary=x"},
            ),
            400,
            "the form cannot be read",
        ),
        (
            requests.post(
                station + "api/identify",
                data=chunked(b"RIFF" + bytes(21 * 2**20)),
                headers={"content-type": "multipart/form-data; boundary=edge-test-boundary"},
            ),
            413,
            "larger than the 20 MiB",
        ),
    ]
    for answer, status, reason in cases:
        assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json"), answer.text
        assert reason in answer.json()["error"]
    assert identify(station, spinetail(), **COLOMBIA).status_code == 200  # the station still identifies


def test_other_pages_answer_while_identifications_run_and_a_full_queue_is_told_busy(tmp_path):
    identifier = Identifier(IdentifyOptions(models_dir=MODELS, max_waiting=1))
    with station_pages(tmp_path, services={"identifier": identifier}) as url:
        answers: list[requests.Response] = []

        def ask() -> None:
            answers.append(identify(url, spinetail(), **COLOMBIA))

        asking = [threading.Thread(target=ask) for _ in range(2)]
        # Held by the test as a running identification would hold it: the requests wait in the worker threads.
        with identifier._lock:
            asking[0].start()
            wait_for(lambda: identifier.queued == 1, what="the first identification waits")
            asking[1].start()
            wait_for(lambda: identifier.queued == 2, what="the second one waits")
            assert requests.get(url, timeout=30).status_code == 200
            assert requests.get(url + "identify", timeout=30).status_code == 200
            busy = identify(url, spinetail())
            assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
            assert "busy" in busy.json()["error"]
            assert not answers  # both still waiting
        for thread in asking:
            thread.join(timeout=300)
        assert [a.json()["species"][0]["scientific_name"] for a in answers] == [SPINETAIL, SPINETAIL]


def test_without_anonymous_guests_identifying_needs_a_sign_in(tmp_path):
    identifier = Identifier(IdentifyOptions(models_dir=MODELS))
    with station_pages(tmp_path, services={"identifier": identifier}, anonymous="none") as url:
        refused = identify(url, spinetail())
        assert refused.status_code == 401 and refused.json() == {"error": "sign in first"}
        assert not identifier.loaded
        users(tmp_path / "station.sqlite", ("guide", "guest", "guide-password"))
        session = requests.Session()
        sign_in(session, url, "guide", "guide-password")
        answer = session.post(url + "api/identify", files={"file": ("a.wav", spinetail())}, data=COLOMBIA)
        assert answer.status_code == 200 and answer.json()["species"][0]["scientific_name"] == SPINETAIL


def test_a_station_without_an_identifier_says_so(tmp_path):
    with station_pages(tmp_path) as url:
        answer = identify(url, spinetail())
        assert answer.status_code == 503 and "does not identify" in answer.json()["error"]
        assert "does not identify recordings" in requests.get(url + "identify").text


def microphone_recording(tmp_path) -> str:
    """The spinetail recording as chromium's fake microphone plays it: 48 kHz, 16-bit PCM WAV."""
    import soxr

    audio, rate = sf.read(DATA / "maad_spinetail.wav", dtype="float32")
    path = tmp_path / "microphone.wav"
    sf.write(path, soxr.resample(audio, rate, 48000), 48000, subtype="PCM_16")
    return str(path)


def test_the_page_records_the_microphone_and_shows_the_species(station, tmp_path):
    flags = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_recording(tmp_path)}",
    )
    with browser(*flags) as chromium:
        context = chromium.new_context(
            geolocation={"latitude": 5.0, "longitude": -75.5},
            permissions=["geolocation", "microphone"],
            viewport={"width": 412, "height": 860},  # a guide's phone
        )
        page = context.new_page()
        page.goto(station + "identify")
        assert page.inner_text("h1") == "Identify a recording"
        page.check("#use-location")
        page.click("#record")
        page.wait_for_selector("#stop:enabled")
        # Recording stops by itself after RECORD_SECONDS of audio, then the answer is listed.
        first = page.wait_for_selector("#results li", timeout=(RECORD_SECONDS + 240) * 1000)
        assert first.query_selector(".common").inner_text() == "Red-faced Spinetail"
        assert first.query_selector(".scientific").inner_text() == SPINETAIL
        assert "expected here" in page.inner_text("#status")
        assert page.eval_on_selector("#playback", "a => !a.hidden && a.src.startsWith('blob:')")
        wait_for(lambda: page.eval_on_selector("#playback", "a => a.duration") > RECORD_SECONDS - 1, what="playback")
        screenshot(page, "identify")
        # A file chosen instead of a recording goes the same way.
        page.set_input_files("#file", str(DATA / "opso_aru_1_CSWA_3s.wav"))
        page.uncheck("#use-location")
        page.click("#send-file")
        page.wait_for_selector("#results li:first-child .common:text-is('Chestnut-sided Warbler')", timeout=240_000)
        context.close()
