"""PostgreSQL backend: store and broker in one schema (asyncpg, one pool each).

The schema is chosen by the URL (``postgresql://host/db?schema=name``, default ``genqueue``)
and built by the versioned files in ``migrations/`` (see ``migrate.py``); each file documents
its tables. Every verb is one statement (CTEs that change rows and insert their events
together) or, where it cannot be, one transaction. Events and new deliveries wake listeners
with NOTIFY on ``<schema>.events`` / ``<schema>.deliveries``; listeners also poll slowly, so a
lost notification only delays.
"""
