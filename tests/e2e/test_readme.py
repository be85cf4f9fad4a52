"""The README's curl quickstart, run verbatim (only the address changes) against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

from .harness import REPO_ROOT, ServerFactory, console_script

README_ADDRESS = "http://127.0.0.1:8000"


def quickstart_script() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Quickstart section has no ```sh block"
    return match.group(1)


def test_readme_quickstart_works_verbatim(start_server: ServerFactory, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is missing: .ci/run installs it")
        pytest.skip("curl is not installed")
    script = quickstart_script()
    assert README_ADDRESS in script
    server = start_server()
    completed = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            script.replace(README_ADDRESS, server.base_url).replace(
                ".venv/bin/taskgate", str(console_script())
            ),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    # Each curl prints one JSON document; the last one is the task read back.
    last = completed.stdout[completed.stdout.rindex('{"id"') :]
    task = json.loads(last)
    assert task["state"] == "succeeded"
    assert task["result"] == {"sent": True}
