"""Between the ensemble and the events: threat alerts, the species filter (range model, lists), the speech
detector of the privacy gate. Imports inference and the layers below it.
"""
