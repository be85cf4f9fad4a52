"""The `taskgate` command line."""
