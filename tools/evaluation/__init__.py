"""Tools for scoring edge against an expert's labels."""
