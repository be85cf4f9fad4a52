"""Reading a /metrics answer in tests: samples by name and labels, and `promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import IN_CI

SampleKey = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """One exposition, parsed; `value(name, **labels)` is 0.0 for a series it lacks
    (a counter that never counted is not exported)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[SampleKey, float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in self.samples, f"duplicate series {key}"
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value `label` takes in the series of `name`."""
        return {
            dict(labels)[label]
            for sample_name, labels in self.samples
            if sample_name == name and label in dict(labels)
        }

    def total(self, name: str, **labels: str) -> float:
        """The sum over the series of `name` that carry `labels` (and any others)."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample_name, sample_labels), value in self.samples.items()
            if sample_name == name and wanted <= sample_labels
        )


def promtool() -> str:
    """The promtool executable; skips the test when there is none (fails it in CI)."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def assert_promtool_accepts(text: str) -> None:
    """`promtool check metrics` finds no format or lint problem in `text`."""
    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    problems = (checked.stdout + checked.stderr).decode(errors="replace")
    assert checked.returncode == 0, f"promtool check metrics: {problems}"
