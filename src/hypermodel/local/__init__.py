"""The local runner: one op, or a whole pipeline over a process pool, with retries and caching."""
