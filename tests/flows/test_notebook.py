"""notebooks/trigger.ipynb runs end to end against a real server and a served deployment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "trigger.ipynb"
SMOKE = ROOT / "configs" / "smoke.yaml"


def with_parameters(nb, values: dict):
    """Insert a cell overriding the tagged parameters cell, as papermill does."""
    import nbformat

    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)
    return nb


def test_notebook_has_a_tagged_parameters_cell_that_runs_a_deployment() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "deployment = " in tagged[0].source and "api_url = " in tagged[0].source
    assert any("run_deployment(" in c.source for c in nb.cells)


def _wait_for_deployment(name: str, timeout: float) -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                client.read_deployment_by_name(name)
                return
            except ObjectNotFound:
                time.sleep(1)
    raise AssertionError(f"deployment {name} was not served within {timeout:.0f} s")


@pytest.mark.slow
def test_notebook_triggers_the_served_deployment_and_shows_results(
    prefect_api, smoke_corpus_dir, tmp_path
):
    import nbformat
    from nbclient import NotebookClient

    from runtime.server import stop_process

    cache = f"corpus.cache_dir={smoke_corpus_dir}"
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "cli.serve", "--config", str(SMOKE), "--set", cache]
    cmd += ["--no-schedule", "--name", "nb", "--experiment-dir", str(exp)]
    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115  (kept open for the process's life)
    serve = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_deployment("optimize_mixture/nb", timeout=90)
        nb = with_parameters(
            nbformat.read(NOTEBOOK, as_version=4),
            {
                "api_url": prefect_api,
                "deployment": "optimize_mixture/nb",
                "config_path": str(SMOKE),
                "overrides": [cache, "sweep.n_runs=3", "target_run.seeds=[0]"],
                "experiment_dir": str(exp),
                "timeout_seconds": 400,
            },
        )
        client = NotebookClient(
            nb,
            timeout=500,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
    finally:
        stop_process(serve)
        log.close()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "Completed" in text or "COMPLETED" in text, text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # mixture bars, predicted vs measured (+ target runs)
    assert (exp / "summary.json").is_file()
