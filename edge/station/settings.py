"""The station's configuration file (`edge station --config station.toml`): one table per part of the station.

The file may hold secrets (the notification URLs carry tokens), so a problem is told by the key it is under,
never by the value found there.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.app.settings import options_wrong
from edge.station.notify import NotifySettings
from edge.station.web.site import HttpSettings


class SettingsError(ValueError):
    """A configuration file that cannot be used; its text names the file and the keys, not their values."""


class StationSettings(BaseModel):
    """What `--config` gives the station, one field per TOML table; a table or key it does not know is an
    error, not a setting silently ignored."""

    model_config = ConfigDict(extra="forbid")

    notify: NotifySettings = Field(default_factory=NotifySettings, description="[notify]: alerts pushed out.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="[http]: the web pages and who may see them.")


def load_settings(path: Path) -> StationSettings:
    """The settings of the TOML file at `path`; SettingsError when it cannot be read or holds a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its words give the line and column, not the text there
        raise SettingsError(f"{path} is not valid TOML: {error}") from None
    try:
        return StationSettings.model_validate(data)
    except ValidationError as error:  # not chained: its own text quotes the values
        problems = "; ".join(f"{option}: {problem}" for option, problem in options_wrong(error))
        raise SettingsError(f"{path}: {problems}") from None
