"""Synthesizable Amaranth components (no knowledge of models/ or tb/)."""
