"""Prometheus side: the collector that turns figures into metric families, exposition, HTTP."""
