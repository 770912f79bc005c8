"""Helpers shared by the scripts and the tests: provenance of stored results, model utilities, synthetic batches."""
