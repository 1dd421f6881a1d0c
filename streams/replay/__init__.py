"""Replay and backfill: event logs and Kafka ranges through the live code path.

``sources`` turns files (JSON Lines, plain or gzip; REES46 CSV) and Kafka
ranges into batches of raw records; ``runner`` feeds them to the same
:class:`streams.worker.pipeline.BatchProcessor` the worker uses; ``backfill`` turns
stored buckets into Prometheus history.
"""
