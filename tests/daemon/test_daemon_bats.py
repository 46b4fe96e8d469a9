"""One microphone, two models, through the daemon: a real spinetail recording and a real bat recording in one
384 kHz file; BirdNET's events are the birds', BatDetect2's the bats', each a bat pass with its calls."""

from support.bats import BATS, write_birds_then_bats
from support.config import write_config
from support.processes import DaemonProcess
from support.records import read_records


def test_birdnet_and_batdetect2_on_one_384_khz_stream(tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    write_birds_then_bats(recordings / "moth.wav")
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path / "data",
        {"type": "replay", "paths": [str(recordings)]},
        model={"members": ["birdnet-v2.4", "batdetect2-uk"]},
    )
    daemon = DaemonProcess(config)
    assert daemon.wait_exit() == 0
    daemon.close()
    ends = [e for e in read_records(tmp_path / "data" / "records") if e["kind"] == "end"]
    bats = [e for e in ends if e["scientific_name"] in BATS]
    assert {e["scientific_name"] for e in bats} == BATS
    assert all(e["start_s"] <= 21 < e["end_s"] for e in bats), "the events hold the bats' half second"
    assert any(e["scientific_name"].startswith("Cranioleuca") and e["end_s"] <= 22.5 for e in ends)
    assert {e["model"] for e in ends} == {"birdnet-v2.4+batdetect2-uk"}
    passes = {e["scientific_name"]: (e["calls"], e["peak_freq_hz"]) for e in bats}
    print(passes)
    assert all(calls >= 1 for calls, _ in passes.values()), "a bat pass counts its calls"
    assert 42000 <= passes["Pipistrellus pipistrellus"][1] <= 51000, "the common pipistrelle's peak frequency"
    assert not [e for e in ends if "calls" in e and e["scientific_name"] not in BATS], "birds have no calls"
