"""A replay's detections as one self-contained HTML page a biologist looks at: spectrograms with the
detections and an expert's boxes, a species timeline, counts, and with labels the evaluation's numbers and
precision-recall curves. Imports evaluation (its records and metrics) and the layers below; draws with
matplotlib, the `report` extra, imported only when a report is written.
"""

from edge.report.page import find_audio, write_report

INSTALL = "pip install 'edge[report]'  (in a checkout: bash tools/setup.sh report)"

__all__ = ["INSTALL", "find_audio", "write_report"]
