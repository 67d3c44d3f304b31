"""The monitor stage's Python side: Prometheus' configuration from the settings (`ftk run monitor`)."""
