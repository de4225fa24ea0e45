"""The shared core: config, service tree, transports, rate limits, accounts, metrics."""
