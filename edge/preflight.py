"""`edge config check`: every model file a configuration would load, checked without loading it."""

from __future__ import annotations

from edge.manifest import ModelError, find, require_folder
from edge.model_folders import find_folder
from edge.names import CommonNames
from edge.range_model import MODEL_NAME as RANGE_MODEL
from edge.settings import Settings
from edge.speech import MODEL_NAME as SPEECH_MODEL


def model_problems(settings: Settings) -> list[str]:
    """One line per model that is missing, damaged or unknown; empty when the daemon would find them all."""
    models_dir = settings.models_dir
    try:
        require_folder(models_dir)
    except ModelError as error:
        return [str(error)]
    problems = []
    for name in settings.model.names:
        try:
            find(models_dir, name).verify()
        except ModelError as error:
            problems.append(str(error))
    folders = [RANGE_MODEL] if settings.species.options().located else []
    folders += [SPEECH_MODEL] if settings.privacy.speech_detector else []
    for folder in folders:
        try:
            problems += find_folder(models_dir, folder).problems()
        except ModelError as error:
            problems.append(str(error))
    try:
        CommonNames.load(models_dir, settings.language)
    except (ModelError, ValueError) as error:
        problems.append(f"language: {error}")
    return problems
