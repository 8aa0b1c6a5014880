"""MLflow as the system of record: the run hierarchy of a pipeline run, runs a step opens,
data snapshots, provenance, failure classification, the open-runs ledger.
"""
