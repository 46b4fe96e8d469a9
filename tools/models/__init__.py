"""Building the models under models/ from their upstream packages (convert_*, import_*), quantizing them
(quantize), and random-weight members for benchmarks and tests (mel_member)."""
