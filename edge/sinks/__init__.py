"""Where records go: replay's files and summary, the daily files, the durable outbox and the MQTT uplink.
Imports the layers up to screen, events and clips, never sources.
"""
