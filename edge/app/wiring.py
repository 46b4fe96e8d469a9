"""What `edge run` is made of, built from its settings: the source, the models, the pipeline's stages and the
outputs. Builds only: nothing here starts a thread or opens a device (see `Daemon.start`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge.app.settings import Settings
from edge.audio.windower import Windower, WindowSpec
from edge.clips.recorder import ClipRecorder, NoClips
from edge.clips.store import ClipStore
from edge.events.smoother import Smoother
from edge.inference.budget import BudgetGuard, Load, ladder
from edge.inference.ensemble import Ensemble, load_ensemble
from edge.inference.names import CommonNames, localise
from edge.inference.stages import Stages
from edge.pipeline import Pipeline
from edge.screen.alerts import AlertGate
from edge.screen.range_model import RangeModel
from edge.screen.species import SpeciesFilter
from edge.screen.speech import NoSpeech, SpeechDetector, SpeechModel
from edge.screen.stage import Screen
from edge.sinks.clip_queue import ClipQueue
from edge.sinks.clip_sender import ClipSender
from edge.sinks.daily import DailyFiles
from edge.sinks.mqtt import MqttPublisher
from edge.sinks.outbox import Outbox
from edge.sinks.outputs import Outputs
from edge.sources.files import ReplayConfig, ReplaySource
from edge.sources.folder import FolderConfig, FolderSource
from edge.sources.microphone import Microphone, MicrophoneConfig
from edge.sources.state import RecordingState
from edge.types import Event, Label, LiveSource


def build_pipeline(settings: Settings, ensemble: Ensemble, stages: Stages) -> tuple[Pipeline[Event], Smoother]:
    """The daemon's pipeline, with the smoother as its events stage (returned too: a reload reconfigures it)."""
    windower = Windower(window_spec(settings), ensemble.sample_rates, settings.model.resampler)
    speech = build_speech(settings)
    screen = build_screen(settings, ensemble.taxonomy.labels, speech)
    smoother = Smoother(settings.smoothing.options(), screen.species.thresholds)
    clips = build_clips(settings, speech)
    return Pipeline(windower, ensemble, screen, smoother, speech, clips, stages), smoother


def build_source(settings: Settings, state: RecordingState) -> LiveSource:
    config = settings.source
    if isinstance(config, FolderConfig):
        return FolderSource(config, state, settings.done_dir, settings.quarantine_dir)
    if isinstance(config, MicrophoneConfig):
        return Microphone(config)
    if isinstance(config, ReplayConfig):
        return ReplaySource(config)
    raise TypeError(f"no source for {type(config).__name__}")


def build_ensemble(settings: Settings, stages: Stages) -> Ensemble:
    specs = [member.spec() for member in settings.model.members]
    place = settings.species.options().place
    ensemble = load_ensemble(settings.models_dir, specs, window_spec(settings), settings.model.options(), stages, place)
    if settings.language != "en":
        names = CommonNames.load(settings.models_dir, settings.language)
        ensemble.taxonomy = replace(ensemble.taxonomy, labels=localise(ensemble.taxonomy.labels, names))
    return ensemble


def build_species(
    settings: Settings, labels: tuple[Label, ...], alerts: AlertGate, range_model: RangeModel | None = None
) -> SpeciesFilter:
    """The species filter; `range_model`, when one is loaded already, is used rather than loaded again."""
    return SpeciesFilter.load(settings.species.options(), labels, settings.models_dir, alerts.indices, range_model)


def build_screen(settings: Settings, labels: tuple[Label, ...], speech: SpeechDetector | NoSpeech) -> Screen:
    alerts = AlertGate(settings.alerts.options(), labels)
    return Screen(alerts, build_species(settings, labels, alerts), speech, settings.privacy.suppress_detections)


def build_speech(settings: Settings) -> SpeechDetector | NoSpeech:
    if not settings.privacy.speech_detector:
        return NoSpeech()
    return SpeechDetector(SpeechModel.load(settings.models_dir), settings.privacy.options())


def build_clips(settings: Settings, speech: SpeechDetector | NoSpeech) -> ClipRecorder | NoClips:
    c = settings.clips
    if not c.enabled:
        return NoClips()
    store = ClipStore(settings.clips_dir, c.max_age_days, c.max_megabytes, c.min_free_percent)
    options = c.options(settings.clips_dir)
    return ClipRecorder(options, store, veto=lambda stream, start, end: speech.speech_between(stream, start, end) > 0)


def build_guard(settings: Settings, ensemble: Ensemble, live: bool) -> BudgetGuard:
    options = settings.budget.options()
    members = ensemble.members

    def loads_for(held_off: frozenset[int]) -> list[Load]:
        """The ladder while the schedule holds `held_off` off: a TTA step only if a member running has TTA."""
        has_tta = any(m.shifts for i, m in enumerate(members) if i not in held_off)
        return ladder(ensemble.priorities, has_tta, options.order, options.max_hop_factor, held_off)

    return BudgetGuard(options, loads_for(frozenset()), [m.name for m in members], live, ladder_for=loads_for)


def build_outputs(settings: Settings) -> Outputs:
    s = settings
    outbox = Outbox(s.outbox_path, s.outbox.max_records, s.outbox.when_full, queue=s.mqtt is not None)
    place = s.species.options().place
    uplink = MqttPublisher(s.mqtt, s.box_id, outbox, build_clip_sender(s), place) if s.mqtt is not None else None
    files = DailyFiles(s.records_dir, tuple(s.output.formats), fsync=s.output.fsync)
    return Outputs(outbox, files, uplink, s.output.when)


def build_clip_sender(settings: Settings) -> ClipSender | None:
    """What sends clips to the station: none when clips are off, or no kind of clip is to be sent."""
    c = settings.uplink.clips
    if not settings.clips.enabled or not c.kinds:
        return None
    queue = ClipQueue(settings.outbox_path, c.bytes_per_hour, c.max_age_hours * 3600)
    return ClipSender(queue, settings.clips_dir, c.choice())


def store_paths(settings: Settings) -> dict[str, Path]:
    """Where each store writes: each may be on a disk of its own, and each disk can fill up."""
    s = settings
    paths = {"records": s.records_dir, "outbox": s.outbox_path, "state": s.state_path}
    return {**paths, "clips": s.clips_dir} if s.clips.enabled else paths


def window_spec(settings: Settings) -> WindowSpec:
    return WindowSpec(seconds=settings.window.seconds, hop=settings.window.hop)
