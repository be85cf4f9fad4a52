"""Tests of the runners SDK's clients against real `taskgate serve` processes."""
