"""Start tags for tasks joining their queue's line (start-time fair queuing; the rule is in
``genqueue.contracts.Store.claim_next``, the schema in ``migrations/006_fair.sql``).

A task joins at submit when it is due, else at the first ``claim_next`` of its queue after
(``fair.MAKE_READY``). Both build their statement from :func:`tag_ctes`, which reserves the
tags of all the joining tasks of one statement at once: per (queue, priority, user) one
``INSERT ... ON CONFLICT DO UPDATE`` moves ``F`` by the sum of the increments and returns it,
and the tasks take consecutive tags below it in age order. The row lock of that upsert is
what serialises two statements tagging for one user; rows are taken in key order, so they
cannot deadlock. The floor ``V`` is read from the line's indexes, never stored: no row is
written by every claim.
"""

from __future__ import annotations

STRIDE = 1000  # tag units a task of weight 1 moves its user on

# A task's increment: max(1, round(1000 / weight)); round() of float8 rounds half to even,
# as Python's does.
INCREMENT = f"greatest(1, round({STRIDE} / weight))::bigint"
# Users per (queue, priority); no user counts as one user ''.
USER_KEY = "coalesce(user_name, '')"


def _first_tag(parked: str) -> str:
    """The smallest tag of a (queue, priority) ``k`` in one part of the line."""
    return f"""(SELECT fair_tag FROM tasks WHERE queue = k.queue AND priority = k.priority
              AND status = 'queued' AND fair_tag IS NOT NULL AND waiting_for IS {parked}
              ORDER BY fair_tag LIMIT 1)"""


def tag_ctes(joining: str) -> str:
    """CTEs (to follow ``WITH ...,``) that tag the tasks of the CTE ``joining``, which has
    columns ``n`` (age order), ``queue``, ``priority``, ``user_key`` and ``inc``, and end
    with the CTE ``tags (n, tag)``. ``F`` of their users moves on in the same statement."""
    return f"""
floors AS (
    SELECT k.queue, k.priority, coalesce(
        least({_first_tag("NULL")}, {_first_tag("NOT NULL")}),
        (SELECT max(finish) FROM fair_users f WHERE f.queue = k.queue
             AND f.priority = k.priority),
        0) AS v
    FROM (SELECT DISTINCT queue, priority FROM {joining}) k
), need AS (
    SELECT queue, priority, user_key, sum(inc)::bigint AS total
    FROM {joining} GROUP BY queue, priority, user_key
), reserved AS (
    INSERT INTO fair_users AS f (queue, priority, user_key, finish)
    SELECT need.queue, need.priority, need.user_key, floors.v + need.total
    FROM need JOIN floors USING (queue, priority)
    ORDER BY need.queue, need.priority, need.user_key
    ON CONFLICT (queue, priority, user_key) DO UPDATE SET finish = greatest(
        f.finish + (SELECT total FROM need WHERE (need.queue, need.priority, need.user_key)
                    = (EXCLUDED.queue, EXCLUDED.priority, EXCLUDED.user_key)),
        EXCLUDED.finish)
    RETURNING f.queue, f.priority, f.user_key, f.finish
), tags AS (
    SELECT j.n, r.finish - need.total + sum(j.inc) OVER w - j.inc AS tag
    FROM {joining} j
        JOIN need USING (queue, priority, user_key)
        JOIN reserved r USING (queue, priority, user_key)
    WINDOW w AS (PARTITION BY j.queue, j.priority, j.user_key ORDER BY j.n)
)"""
