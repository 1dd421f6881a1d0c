"""The streaming worker: Faust app, Kafka consumer, batch pipeline and its wiring."""
