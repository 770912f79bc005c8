"""Data for the mini benchmark (importing this package needs no mmdet)."""
