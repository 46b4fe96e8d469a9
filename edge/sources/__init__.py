"""Where audio comes from: recordings on disk (replay), the folder a recorder writes to, the microphone; the
recording state of each file. Imports the layers up to screen, events and clips, never sinks.
"""
