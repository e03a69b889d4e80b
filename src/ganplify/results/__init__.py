"""The results folder: its file I/O, manifest and verification, provenance, merging and status."""
