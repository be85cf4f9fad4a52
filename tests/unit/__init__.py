"""Tests for taskgate."""
