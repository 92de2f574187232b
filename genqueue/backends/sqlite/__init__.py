"""SQLite backend: store and broker in one WAL file."""
