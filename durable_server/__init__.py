"""The durable server: timers, lease reclaim, HTTP API and metrics (see issue 3)."""
