"""The sections of the daemon's settings file, one model per TOML table (`[model]`, `[smoothing]`, ...).

A section that configures a stage takes its defaults from the stage's options (`SmootherOptions.on`, ...), so
each default is written once, beside the code that uses it; the section adds bounds and descriptions, and its
`options()` builds the stage's options. The settings that hold them, and their loading, are in `settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.audio.windower import WindowSpec
from edge.clips.recorder import ClipOptions
from edge.events.smoother import SmootherOptions
from edge.inference.budget import BudgetOptions, Lever
from edge.inference.ensemble import MemberSpec
from edge.inference.member import MemberOptions
from edge.inference.schedule import Active
from edge.screen.alerts import AlertClass, AlertOptions
from edge.screen.species import SpeciesOptions
from edge.screen.speech import SpeechOptions
from edge.sinks.clip_sender import ClipChoice
from edge.sinks.outbox import WhenFull
from edge.sinks.outputs import FilesWhen
from edge.sources.files import ReplayConfig
from edge.sources.folder import FolderConfig
from edge.sources.microphone import MicrophoneConfig

DEFAULT_MODEL = "birdnet-v2.4"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # every float finite: inf is no duration


def names_are_tables(cls, value):
    """A list of `["a", "b"]` is short for tables that give only the name: `[{name = "a"}, {name = "b"}]`."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class MemberSettings(Section):
    name: str = Field(description="Model directory name.")
    weight: float = Field(1.0, gt=0, le=100, description="Weight in the blend (a weighted mean of probabilities).")
    priority: int = Field(0, description="Under a CPU budget, members of lower priority are shed first.")
    tta: list[Annotated[float, Field(ge=-60, le=60)]] = Field(
        [],
        max_length=16,
        description="Time-shift test-time augmentation: shifts in seconds, e.g. "
        "[-0.5, 0.5] (three variants, averaged).",
    )
    active: Active = Field(
        "always",
        description="When the model runs: always, by day (sunrise to sunset) or by night, at the place set by "
        "[species] latitude and longitude.",
    )

    def spec(self) -> MemberSpec:
        return MemberSpec(self.name, self.weight, self.priority, tuple(self.tta), self.active)


class ModelSettings(Section):
    members: list[MemberSettings] = Field(
        [MemberSettings(name=DEFAULT_MODEL)],
        min_length=1,
        description="Models to run: names, or tables with name, weight, priority, tta and active (an ensemble if "
        "several).",
    )
    threads: int = Field(
        MemberOptions.intra_op_threads, ge=1, le=64, description="ONNX Runtime threads inside an operator, per model."
    )
    inter_op_threads: int = Field(
        MemberOptions.inter_op_threads, ge=1, le=64, description="ONNX Runtime threads across graph branches."
    )
    sensitivity: float = Field(
        MemberOptions.sensitivity, ge=0.5, le=1.5, description="BirdNET sensitivity: higher reports more."
    )
    crop_stride: float = Field(
        MemberOptions.crop_stride,
        ge=0.1,
        le=60,
        description="Grid step of the crops of a model shorter than a window, s.",
    )
    resampler: Literal["kaiser_fast", "soxr"] = Field(
        "kaiser_fast",
        description="Sample-rate conversion to the models' rates: kaiser_fast (BirdNET-Analyzer's "
        "own, librosa's res_type='kaiser_fast') or soxr (libsoxr, high quality).",
    )

    names_are_members = field_validator("members", mode="before")(names_are_tables)

    @model_validator(mode="before")
    @classmethod
    def models_dir_moved(cls, data):
        if isinstance(data, dict) and "models_dir" in data:
            raise ValueError("models_dir is a top-level option (EDGE_MODELS_DIR), no longer one of [model]")
        return data

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def options(self) -> MemberOptions:
        return MemberOptions(
            crop_stride=self.crop_stride,
            sensitivity=self.sensitivity,
            intra_op_threads=self.threads,
            inter_op_threads=self.inter_op_threads,
        )


class BudgetSettings(Section):
    cpu_budget: float | None = Field(
        BudgetOptions.cpu_budget,
        gt=0,
        le=64,
        description="CPU-seconds per second of audio for the whole daemon "
        "(0.5: half a core); unset: no limit. Live input sheds load over it, file input is paced.",
    )
    shed_order: list[Lever] = Field(
        list(BudgetOptions.order),
        description="Order of the levers that shed load: tta, members (lowest priority first), hop (skip windows).",
    )
    max_hop_factor: int = Field(
        BudgetOptions.max_hop_factor, ge=1, le=16, description="Longest hop the guard may use, in hops."
    )
    headroom: float = Field(
        BudgetOptions.headroom,
        gt=0,
        le=1,
        description="Restore load when it is predicted to cost at most this share of the budget.",
    )
    settle_seconds: float = Field(
        BudgetOptions.settle_seconds, gt=0, le=3600, description="Audio seconds measured at a level before judging it."
    )
    hold_seconds: float = Field(
        BudgetOptions.hold_seconds, gt=0, le=86400, description="Audio seconds at a level before restoring load."
    )
    max_lag: float = Field(
        BudgetOptions.max_lag, gt=0, le=3600, description="Seconds live audio may wait before load is shed at once."
    )

    def options(self) -> BudgetOptions:
        return BudgetOptions(
            cpu_budget=self.cpu_budget,
            order=tuple(self.shed_order),
            max_hop_factor=self.max_hop_factor,
            headroom=self.headroom,
            settle_seconds=self.settle_seconds,
            hold_seconds=self.hold_seconds,
            max_lag=self.max_lag,
        )


class WindowSettings(Section):
    seconds: float = Field(WindowSpec.seconds, ge=0.1, le=60, description="Analysis window, seconds.")
    hop: float = Field(WindowSpec.hop, ge=0.1, le=60, description="Seconds between window starts (at most the window).")

    @model_validator(mode="after")
    def no_gaps(self) -> WindowSettings:
        WindowSpec(self.seconds, self.hop)  # raises ValueError for a hop longer than the window
        return self


class SmoothingSettings(Section):
    """The stages of edge.events.smoother; see SmootherOptions for their meaning."""

    neighbours: float = Field(
        SmootherOptions.neighbours, ge=0, le=1, description="Weight of each neighbouring window (0: off)."
    )
    ema: float = Field(
        SmootherOptions.ema, ge=0, lt=1, description="Weight of the past in an exponential moving average (0: off)."
    )
    on: float = Field(SmootherOptions.on, ge=0, le=1, description="Smoothed score that starts an event.")
    off: float = Field(SmootherOptions.off, ge=0, le=1, description="Smoothed score that keeps an event going.")
    instant: float = Field(
        SmootherOptions.instant, ge=0, le=1, description="A single raw window this confident starts an event at once."
    )
    min_duration: float = Field(
        SmootherOptions.min_duration, ge=0, le=3600, description="Seconds above `on` before an event starts."
    )
    end_after: float = Field(
        SmootherOptions.end_after, gt=0, le=3600, description="Seconds without a window above `off` that end an event."
    )
    cooldown: float = Field(
        SmootherOptions.cooldown, ge=0, le=86400, description="Seconds after an end before the species can start anew."
    )
    update_delta: float = Field(
        SmootherOptions.update_delta, gt=0, le=1, description="Confidence gain that sends an update."
    )
    update_every: float = Field(
        SmootherOptions.update_every, gt=0, le=86400, description="Duration growth, seconds, that sends an update."
    )

    def options(self) -> SmootherOptions:
        return SmootherOptions(**self.model_dump())

    @model_validator(mode="after")
    def consistent(self) -> SmoothingSettings:
        self.options()  # raises ValueError when the thresholds contradict each other
        return self


class OutputSettings(Section):
    formats: list[Literal["jsonl", "csv"]] = Field(["jsonl", "csv"], description="Daily files written locally.")
    directory: Path | None = Field(None, description="Folder of the daily files (default: <data_dir>/records).")
    fsync: bool = Field(True, description="Sync each record to storage before going on (survives power cuts).")
    when: FilesWhen = Field(
        "always", description="Write daily files always, or only while the MQTT uplink is down (offline)."
    )


class OutboxSettings(Section):
    max_records: int = Field(
        1_000_000, ge=100, description="Records kept for the broker at most (about 600 bytes each)."
    )
    when_full: WhenFull = Field(
        "drop_oldest",
        description="When full: health records go first, then drop_oldest drops the oldest "
        "record, drop_newest refuses new ones. Each drop is logged and counted.",
    )


class UplinkClipSettings(Section):
    kinds: list[Literal["alerts", "events"]] = Field(
        list(ClipChoice.kinds), description="Clips sent to the station: those of alerts, of events, both, or none."
    )
    species: list[str] = Field(
        [], description="Events whose clips are sent: these species only (any name of a class); empty: all."
    )
    bytes_per_hour: int = Field(
        2_000_000, ge=0, description="Clip bytes sent in any hour at most (2 MB: a GSM link); the rest waits."
    )
    max_age_hours: float = Field(72.0, gt=0, le=8760, description="A clip still waiting after this long is dropped.")
    max_clip_bytes: int = Field(
        ClipChoice.max_bytes,
        ge=10_000,
        le=200_000_000,
        description="Clips bigger than this are never sent (keep it under the broker's max_packet_size).",
    )

    def choice(self) -> ClipChoice:
        species = frozenset(name.casefold() for name in self.species)
        return ClipChoice(tuple(self.kinds), species, self.max_clip_bytes)


class UplinkSettings(Section):
    clips: UplinkClipSettings = UplinkClipSettings()


class AlertClassSettings(Section):
    name: str = Field(description="Class: scientific name, common name or label of a model's class.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Score of one window that alerts (default: the section's threshold)."
    )


class AlertSettings(Section):
    classes: list[AlertClassSettings] = Field(
        [AlertClassSettings(name=n) for n in ("Gun", "Power tools", "Engine", "Siren", "Fireworks")],
        description="Threat classes alerted from a single window: names, or tables with name and threshold.",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="Window score that alerts, for classes without their own.")
    min_interval: float = Field(
        AlertOptions.min_interval,
        ge=0,
        le=86400,
        description="Seconds of audio after an alert before its class alerts again (windows held back are counted).",
    )

    names_are_classes = field_validator("classes", mode="before")(names_are_tables)

    def options(self) -> AlertOptions:
        classes = tuple(
            AlertClass(c.name, self.threshold if c.threshold is None else c.threshold) for c in self.classes
        )
        return AlertOptions(classes=classes, min_interval=self.min_interval)


class SpeciesSettings(Section):
    latitude: float | None = Field(
        SpeciesOptions.latitude,
        ge=-90,
        le=90,
        description="The box's latitude, degrees north: with longitude, turns the range filter on.",
    )
    longitude: float | None = Field(
        SpeciesOptions.longitude, ge=-180, le=180, description="The box's longitude, degrees east."
    )
    range_threshold: float = Field(
        SpeciesOptions.range_threshold,
        ge=0,
        le=1,
        description="Species expected below this occurrence at the location and week are dropped.",
    )
    include: list[str] = Field(
        list(SpeciesOptions.include), description="Species always reported, whatever the range filter says."
    )
    exclude: list[str] = Field(list(SpeciesOptions.exclude), description="Species never reported (wins over include).")
    thresholds_file: Path | None = Field(
        SpeciesOptions.thresholds_file,
        description="File of 'Scientific "
        "name,threshold' lines: the smoothed score that starts an event of that "
        "species.",
    )

    @model_validator(mode="after")
    def both_or_neither(self) -> SpeciesSettings:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: set both for the range filter, or neither")
        return self

    def options(self) -> SpeciesOptions:
        return SpeciesOptions(
            latitude=self.latitude,
            longitude=self.longitude,
            range_threshold=self.range_threshold,
            include=tuple(self.include),
            exclude=tuple(self.exclude),
            thresholds_file=self.thresholds_file,
        )


class PrivacySettings(Section):
    speech_detector: bool = Field(
        True,
        description="Run the speech detector: speech is counted (never "
        "recorded) and audio with speech is never saved as a clip.",
    )
    threshold: float = Field(
        SpeechOptions.threshold, gt=0, lt=1, description="Speech probability of a 32 ms frame that counts as speech."
    )
    suppress_detections: bool = Field(
        False,
        description="Drop the scores of windows that overlap speech: "
        "no detection event comes from them (alerts still do).",
    )

    def options(self) -> SpeechOptions:
        return SpeechOptions(threshold=self.threshold)


class ClipSettings(Section):
    enabled: bool = Field(False, description="Save a FLAC clip of each detection event (never of speech).")
    directory: Path | None = Field(None, description="Folder of the clips (default: <data_dir>/clips).")
    pre_roll: float = Field(ClipOptions.pre_roll, ge=0, le=60, description="Seconds before the event's start.")
    post_roll: float = Field(ClipOptions.post_roll, ge=0, le=60, description="Seconds after its end.")
    max_seconds: float = Field(
        ClipOptions.max_seconds, gt=0, le=600, description="Longest clip from the event's start, seconds."
    )
    max_age_days: float = Field(30.0, gt=0, le=36500, description="Clips older than this are deleted.")
    max_megabytes: float = Field(
        2048.0, gt=0, le=1e9, description="The clip folder is kept under this size, oldest clips deleted first."
    )
    min_free_percent: float = Field(
        10.0, ge=0, lt=100, description="Oldest clips are deleted while the disk has less free space than this."
    )

    def options(self, directory: Path) -> ClipOptions:
        return ClipOptions(directory, self.pre_roll, self.post_roll, self.max_seconds)


class HealthSettings(Section):
    interval_seconds: float = Field(60.0, ge=1, le=86400, description="Seconds between health records.")
    min_free_percent: float = Field(
        5.0,
        ge=0,
        le=100,
        description="Below this much free space on a store's disk (records, outbox, state, "
        "clips), each health record is logged as a warning (disk_low).",
    )


SourceSettings = Annotated[FolderConfig | MicrophoneConfig | ReplayConfig, Field(discriminator="type")]
