"""Start tags for tasks joining their queue's line (start-time fair queuing; the rule is in
``genqueue.contracts.Store.claim_next``, the schema in ``migrations/006_fair.sql``).

A task joins at submit when it is due, else at the first ``claim_next`` of its queue after
(``fair.MAKE_READY``). Both build their statement from :func:`tag_ctes`, which reserves the
tags of all the joining tasks of one statement at once: per (queue, priority, user) one call
of the SQL function ``fair_reserve`` moves ``F`` by the sum of the increments (one upsert, whose
row lock serialises two statements tagging for one user) and returns the first tag, and the
tasks take consecutive tags from it in age order. Users are reserved in key order, so two
statements cannot deadlock. The floor ``V`` is read from the line's indexes, never stored:
no row is written by every claim. The SQL function keeps this statement cheap to plan (its
own queries are planned once per connection).
"""

from __future__ import annotations

STRIDE = 1000  # tag units a task of weight 1 moves its user on

# A task's increment: max(1, round(1000 / weight)); round() of float8 rounds half to even,
# as Python's does.
INCREMENT = f"greatest(1, round({STRIDE} / weight))::bigint"
# Users per (queue, priority); no user counts as one user ''.
USER_KEY = "coalesce(user_name, '')"


def tag_ctes(joining: str) -> str:
    """CTEs (to follow ``WITH ...,``) that tag the tasks of the CTE ``joining``, which has
    columns ``n`` (age order), ``queue``, ``priority``, ``user_key`` and ``inc``, and end
    with the CTE ``tags (n, tag)``. ``F`` of their users moves on in the same statement."""
    return f"""
need AS (
    SELECT queue, priority, user_key, sum(inc)::bigint AS total
    FROM {joining} GROUP BY queue, priority, user_key
), reserved AS MATERIALIZED (
    -- fair_reserve is volatile, so it runs after the sort: in key order
    SELECT queue, priority, user_key, fair_reserve(queue, priority, user_key, total) AS start
    FROM need ORDER BY queue, priority, user_key
), tags AS (
    SELECT j.n, r.start + sum(j.inc) OVER w - j.inc AS tag
    FROM {joining} j JOIN reserved r USING (queue, priority, user_key)
    WINDOW w AS (PARTITION BY j.queue, j.priority, j.user_key ORDER BY j.n)
)"""
