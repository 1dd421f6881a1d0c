"""Load generation and benchmarks; independent of the service's own code paths."""
