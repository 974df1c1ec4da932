"""The sandbox: a pool of pre-warmed workers that run untrusted programs, one process per sample."""
