"""What leaves the box: the record schemas and the dicts they are written as, and the MQTT settings, topics and
client the box and the station share. Imports only edge.types.
"""
