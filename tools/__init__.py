"""Scripts around edge, by role: models/ builds the bundled models, bench/ measures edge, ops/ installs and
checks a box. The Python ones run as modules from the repository root (`python -m tools.models.quantize`),
so that they import each other by their package names; they use edge only through its public names."""
