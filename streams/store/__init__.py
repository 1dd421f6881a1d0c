"""The Redis store: the atomic apply (sink), its in-memory twin and the reader of figures."""
