"""The uttt game service: rules, wire messages and the service tying them to the core."""
