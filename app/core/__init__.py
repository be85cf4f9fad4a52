"""Pure domain rules: models, the task state machine, retry backoff, errors. No I/O."""
