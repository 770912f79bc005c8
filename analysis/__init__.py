"""Figures and tables drawn from stored logs (no training): see docs/figures.md."""
