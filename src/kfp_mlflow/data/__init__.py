"""Datasets: sources (files, object stores, fsspec, bundled), reading and validation, feature
encoding, drift.
"""
