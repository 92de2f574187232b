"""Stand-ins: local imitations of upstream services genqueue calls, for tests and demos only.

They are fixtures, not real services and not clients: each speaks just enough of one upstream's
protocol (with its signing, errors and rate limits) to exercise our client end to end on
127.0.0.1 without an account, money or network. Nothing in genqueue's run path imports them.
"""
