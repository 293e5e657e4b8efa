"""The Prefect UI shows a finished optimize_mixture run with its artifacts (headless Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.schema import load_config

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a root user in a container without a display or GPU, and no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
]


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)
def test_ui_shows_the_artifacts_of_a_finished_optimize_run(prefect_api, smoke_corpus_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from flows.optimize import optimize_mixture

    config = load_config(
        SMOKE,
        overrides=[
            f"corpus.cache_dir={smoke_corpus_dir}",
            "sweep.n_runs=3",  # + 2 baselines: enough for 3-fold surrogate quality
            "target_run.enabled=false",
        ],
    )
    state = optimize_mixture(config, str(tmp_path / "exp"), return_state=True)
    assert state.is_completed(), state
    run_id = state.state_details.flow_run_id
    ui = prefect_api.removesuffix("/api")
    shot = tmp_path / "ui.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
            expect(page.get_by_text("Completed").first).to_be_visible(timeout=30_000)
            # The run graph is a canvas; wait for it to be drawn before the screenshot.
            expect(page.locator("canvas").first).to_be_visible(timeout=30_000)
            page.get_by_text("Artifacts", exact=True).first.click()
            for key in ("smoke-report", "smoke-surrogate-quality", "smoke-runs"):
                expect(page.get_by_text(key, exact=True).first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(shot), full_page=True)
            page.get_by_text("smoke-report", exact=True).first.click()
            expect(page.get_by_text("Chosen mixture").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
