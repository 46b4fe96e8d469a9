"""Measuring edge: `python -m tools.bench` runs the benchmark against its peers and of its own ensemble
(live and resample are sections of it); compare_resamplers scores the resamplers on labelled soundscapes."""
