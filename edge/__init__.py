"""edge: a streaming bioacoustic daemon for field recorder boxes."""
