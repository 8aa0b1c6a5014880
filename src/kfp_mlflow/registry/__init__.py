"""The model registry: the promotion policy, champion/challenger promotion, the head-to-head,
version resolution, governance (rollback, manual promotion) and the audit trail.
"""
