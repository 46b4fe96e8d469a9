"""The ranger station: subscribes to every box's records, keeps them in SQLite, shows and exports them.

messages (topic and payload checked into a Record) ─▶ store (SQLite) ◀─ table, history, export, web
subscriber (the MQTT session) ─┤
clips (clip messages checked, their FLAC files kept) ─┘
"""
