"""The audio clip of each detection event, and the clip folder's retention. Imports inference and the layers
below it.
"""
