"""The applications: `edge run` (the daemon, its settings, health, start-up checks) and `edge replay`. Imports
every part of the pipeline, never the station or the command line.
"""
