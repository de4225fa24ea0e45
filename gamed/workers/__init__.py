"""`[server] workers`: one supervisor, N worker processes behind the same ports, one server."""
