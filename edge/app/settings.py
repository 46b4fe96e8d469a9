"""The daemon's settings: one TOML file, overridden by EDGE_... environment variables, checked at start.

`EDGE_SMOOTHING__ON=0.6` overrides `[smoothing] on`; `EDGE_SOURCE='{"type": "microphone"}'` replaces a
whole table. Paths under the data folder are derived from it, so moving `data_dir` moves all of them.

The sections (one per TOML table) are in `sections`.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Literal

import pydantic_settings
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from edge.app.sections import (
    AlertSettings,
    BudgetSettings,
    ClipSettings,
    HealthSettings,
    ModelSettings,
    OutboxSettings,
    OutputSettings,
    PrivacySettings,
    SmoothingSettings,
    SourceSettings,
    SpeciesSettings,
    UplinkSettings,
    WindowSettings,
)
from edge.inference.manifest import default_models_dir
from edge.sinks.mqtt import MqttConfig
from edge.wire.mqtt import box_id_problem

ENV_PREFIX = "EDGE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", allow_inf_nan=False
    )

    box_id: str = Field(default_factory=socket.gethostname, description="Name of this box in every record.")
    data_dir: Path = Field(Path("/var/lib/edge"), description="State, daily records, done and quarantine folders.")
    models_dir: Path = Field(
        default_factory=default_models_dir, description="Folder of model directories (default: the bundled models)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    model: ModelSettings = ModelSettings()
    window: WindowSettings = WindowSettings()
    smoothing: SmoothingSettings = SmoothingSettings()
    source: SourceSettings
    output: OutputSettings = OutputSettings()
    health: HealthSettings = HealthSettings()
    mqtt: MqttConfig | None = Field(None, description="The uplink to the ranger station (none: files only).")
    outbox: OutboxSettings = OutboxSettings()
    uplink: UplinkSettings = UplinkSettings()
    alerts: AlertSettings = AlertSettings()
    budget: BudgetSettings = BudgetSettings()
    species: SpeciesSettings = SpeciesSettings()
    privacy: PrivacySettings = PrivacySettings()
    clips: ClipSettings = ClipSettings()
    language: str = Field(
        "en",
        description="Language of common names: en (the models' own) or one of "
        "`edge species --languages`, e.g. pt_BR, es, fr.",
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls), file_secret_settings

    @field_validator("box_id")
    @classmethod
    def box_id_is_a_topic_level(cls, value: str) -> str:
        if problem := box_id_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("data_dir", "models_dir", mode="before")
    @classmethod
    def folder_named(cls, value):
        if isinstance(value, str) and not value.strip():  # Path("") would be the working directory
            raise ValueError("must name a folder, not be empty")
        return value

    @model_validator(mode="after")
    def clips_need_speech_detector(self) -> Settings:
        if self.clips.enabled and not self.privacy.speech_detector:
            raise ValueError(
                "clips.enabled needs privacy.speech_detector: audio is only saved once it is known to hold no speech"
            )
        return self

    @model_validator(mode="after")
    def scheduled_members_need_place(self) -> Settings:
        scheduled = [f"{m.name} is active by {m.active} only" for m in self.model.members if m.active != "always"]
        if scheduled and not self.species.options().located:
            raise ValueError(
                f"model.members: {', '.join(scheduled)}: sunrise and sunset need the box's place, "
                "set [species] latitude and longitude"
            )
        return self

    @property
    def clips_dir(self) -> Path:
        return self.clips.directory or self.data_dir / "clips"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.sqlite"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    @property
    def records_dir(self) -> Path:
        return self.output.directory or self.data_dir / "records"

    @property
    def done_dir(self) -> Path:
        return getattr(self.source, "done_dir", None) or self.data_dir / "done"

    @property
    def quarantine_dir(self) -> Path:
        return getattr(self.source, "quarantine_dir", None) or self.data_dir / "quarantine"


class SettingsError(Exception):
    """Settings that cannot be used, with every problem named by option and origin."""


def load_settings(path: Path) -> Settings:
    """Settings from the TOML file at `path` and the EDGE_ environment variables; SettingsError names what is
    wrong and where it came from."""
    if not path.is_file():
        raise SettingsError(f"{path}: no such configuration file")
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from error

    class FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        return FromFile()
    except ValidationError as error:
        raise SettingsError(describe(error, path)) from error
    except pydantic_settings.SettingsError as error:  # an environment value that is not the JSON it must be
        raise SettingsError(
            f"{path}: {error}; lists and tables in EDGE_ variables are written as JSON, "
            f"e.g. EDGE_MODEL__MEMBERS='[\"birdnet-v2.4\"]'"
        ) from error


SOURCE_TYPES = ("folder", "microphone", "replay")
SECRETS = ("password",)
OPTION_PATH = re.compile(r"[a-z_]+(\.[a-z_]+)+")


def describe(error: ValidationError, path: Path) -> str:
    lines = [f"{path}: {error.error_count()} problem(s) in the configuration"]
    for option, problem in options_wrong(error):
        location = option.split(".")
        variable = ENV_PREFIX + "__".join(location).upper()
        overridden = [
            name for name in os.environ if name.upper() == variable or variable.startswith(name.upper() + "__")
        ]
        origin = f"environment variable {overridden[0]}" if overridden else f"{path}"
        lines.append(f"  {option}: {problem} [from {origin}]")
    return "\n".join(lines)


def options_wrong(error: ValidationError) -> list[tuple[str, str]]:
    """(option, what is wrong) per problem. The value given is shown only when it is a number or a truth value
    of an option that holds no secret: a string may be a password, or the value of a misspelled key."""
    found = []
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        if location[:1] == ["source"] and location[1:2] and location[1] in SOURCE_TYPES:
            del location[1]  # the union's tag, not an option
        option = ".".join(location)
        value = problem.get("input")
        shown = (
            type(value) in (int, float, bool)
            and problem["type"] != "extra_forbidden"
            and not any(part in SECRETS for part in location)
        )
        words = problem["msg"].removeprefix("Value error, ")  # our validators' own words need no label
        named, colon, rest = words.partition(": ")
        if not option and colon and OPTION_PATH.fullmatch(named):  # a check across tables names its option
            option, words = named, rest
        option = option or "(top level)"
        found.append((option, words + (f" (got {value!r})" if shown else "")))
    return found
