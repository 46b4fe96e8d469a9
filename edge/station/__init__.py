"""The ranger station: subscribes to every box's records, keeps them in SQLite, shows and exports them, and
pushes its alerts to the rangers' phones.

messages (topic and payload checked into a Record) ─▶ store (SQLite) ◀─ table, history, export, search, tally, web
subscriber (the MQTT session) ─┤
clips (clip messages checked, their FLAC files kept) ─┘
subscriber ─ each new alert ─▶ notify (Apprise, from a thread of its own; notice: the message and rate limit)
settings: the station's configuration file (`--config`), one table per part of the station.
web: the pages and the API (`--http`), served from a thread of the same process over the same database:
boxes, alerts (a live feed; clips with their spectrogram), detections, species, identify (upload: the checks
of an upload; identify: the station's models on it); users, reviews (rangers' marks) and acknowledgements.
"""
