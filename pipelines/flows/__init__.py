"""Prefect flows over the DVC stages: the only package that imports Prefect."""
