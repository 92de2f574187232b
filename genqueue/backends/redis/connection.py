"""Connecting to Redis from a genqueue URL, and mapping its failures to genqueue errors."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis

DEFAULT_PREFIX = "genqueue"


def split_url(url: str) -> tuple[str, str]:
    """``redis://h:6379/0?prefix=x`` -> (the URL redis-py understands, the key prefix)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", DEFAULT_PREFIX)
    return urlunsplit(parts._replace(query=urlencode(query))), prefix


def connect(url: str) -> tuple[Redis, str]:
    plain, prefix = split_url(url)
    return Redis.from_url(plain, decode_responses=True, health_check_interval=10), prefix
