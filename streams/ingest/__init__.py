"""Events in: the event types, the decoder, topic and Kafka security settings."""
