"""End-to-end tests: real `taskgate serve` processes on 127.0.0.1, real sockets, real files."""
