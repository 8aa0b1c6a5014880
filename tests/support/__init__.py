"""Real services for the integration tests, started on 127.0.0.1 on free ports."""
