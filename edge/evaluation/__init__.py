"""How good edge is on recordings an expert labelled: matching detections to labels, and the metrics of the
match (precision, recall, F1, average precision, the precision-recall curve). Imports the layers below the
pipeline: the records of wire, never app or cli.
"""
