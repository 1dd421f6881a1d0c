"""Live e-commerce KPIs: Kafka events in, event-time buckets in Redis, Prometheus out.

Imports point one way:
``events`` -> ``aggregators`` -> ``sink`` / ``exporter`` -> ``app`` / ``cli``.
"""

__version__ = "0.1.0"
