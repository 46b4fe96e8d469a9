"""Scores become records: per-window detections (replay) and smoothed start/update/end events (daemon).
Imports inference and the layers below it.
"""
