"""Cluster-side artifacts: Kubernetes-native pipeline resources and manifest helpers."""
