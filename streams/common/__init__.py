"""Foundation shared by every layer: settings, errors, time buckets and the Redis key layout."""
