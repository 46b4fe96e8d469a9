"""Audio on its way to the models: streaming sample-rate conversion and the windower that cuts overlapping
windows at each model's rate. Imports edge.types, storage and wire.
"""
