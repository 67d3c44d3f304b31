"""Kubernetes: the kustomize overlay of configs/kubernetes/base made from the settings (`ftk kube render`)."""
