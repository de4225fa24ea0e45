"""Several gamed nodes acting as one: presence, match queues and a message bus between
nodes (in process for one node, on Redis for many); see docs/cluster.md."""
