"""`ia-world demo` end to end (micro preset), mask overlays, and the report in headless Chromium."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from ia_world.tokens import TokenGrid
from ia_world.viz import overlay, side_by_side, strategy_masks, token_mask_pixels
from ia_world_app import html_report
from ia_world_app.cli import main, run_command

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_token_mask_pixels_follow_token_order():
    grid = TokenGrid(frames=4, size=16, tubelet_t=2, patch=8)
    mask = np.zeros(grid.num_tokens, bool)
    mask[grid.token_of(frame=3, pixel_x=12, pixel_y=2)] = True  # t=1, h=0, w=1
    pixels = token_mask_pixels(mask, grid)
    assert pixels.shape == (4, 16, 16)
    assert pixels[2:, :8, 8:].all() and pixels.sum() == 2 * 8 * 8


def test_overlay_tints_exactly_the_hidden_tokens():
    grid = TokenGrid(frames=4, size=16, tubelet_t=2, patch=8)
    clip = np.full((4, 16, 16, 3), 100, np.uint8)
    masks = strategy_masks(clip, grid, ["random_tube", "interaction"], ratio=0.5, seed=0)
    tinted = overlay(clip, masks["random_tube"], grid)
    redder = tinted[..., 0].astype(int) > tinted[..., 1].astype(int)
    assert np.array_equal(redder, token_mask_pixels(masks["random_tube"], grid))
    strip = side_by_side(clip, masks, grid, scale=2)
    assert strip.shape[:2] == (4, 32) and strip.shape[2] > 3 * 32


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """A micro-preset demo run directory (run twice: the second run must resume).

    Its path has spaces, quotes and non-ASCII letters, passed as a shell would pass them.
    """
    out = tmp_path_factory.mktemp("demo") / 'runs/demo spaced "quoted" \u00fcn\u00ef'
    cwd, before = tmp_path_factory.mktemp("demo_cwd"), os.getcwd()
    os.chdir(cwd)  # whatever a stage wrote relative to the working directory would land here
    try:
        assert main(["demo", "preset=micro", f"out={out}", "videos=1"]) == 0
    finally:
        os.chdir(before)
    return out


@pytest.mark.slow
def test_demo_writes_nothing_outside_out(demo_out):
    """The temp-tree diff: the demo (generate, pretrain, evaluate, report, world_model, solve)
    left nothing in its working directory nor beside `out=`."""
    base = demo_out.parents[1]
    assert [p.name for p in base.iterdir()] == ["runs"]
    assert [p for p in (base / "runs").iterdir()] == [demo_out]
    cwd = next(p for p in base.parent.iterdir() if p.name.startswith("demo_cwd"))
    assert list(cwd.iterdir()) == []


@pytest.mark.slow
def test_demo_writes_report_and_summary(demo_out):
    summary = json.loads((demo_out / "summary.json").read_text())
    # the regime hides every later token whatever the strategy: one encoder, no mask hit-rates
    assert set(summary["metrics"]) == {"interaction"}
    row = summary["metrics"]["interaction"]
    assert np.isfinite(row["R2 total_energy"]) and "hit@0.1" not in row
    assert summary["config"]["compare"]["pretrain"]["masking"]["context_steps"] == 1
    energy = summary["controls"]["R2 total_energy"]
    assert {"floor", "static", "pixel", "ceiling", "interaction", "gap closed interaction"} \
        <= set(energy)
    for cis in summary["speed_gap_ci"].values():  # one paired CI per run, printed by the demo
        assert len(cis) == 1 and cis[0][0] < cis[0][1]
    assert summary["solve"]["random"]["puzzles"] >= 1
    assert summary["solve"]["latent"]["puzzles"] >= 1
    latent = json.loads((demo_out / "solve" / "latent_within_fold0" / "results.json").read_text())
    assert latent["without_rollout"]["overall"]["puzzles"] == summary["solve"]["latent"]["puzzles"]
    assert set(latent["world_model"]["test_tasks"]) >= {"rollout_l1", "probe_auroc_first_window"}
    html = (demo_out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "data:image/gif;base64," in html
    assert "src=\"http" not in html and "<table" in html
    report_md = (demo_out / "report" / "report.md").read_text()  # compare's report, rendered
    assert "## Encoder against its controls" in report_md
    assert "Encoder against its controls</h3>" in html and html.count("<table") >= 4


@pytest.mark.slow
def test_demo_rerun_resumes_without_redoing_stages(demo_out):
    checkpoint = next((demo_out / "runs" / "interaction-seed0" / "checkpoints").glob("step-*"))
    weights = checkpoint / "model.safetensors"
    before = weights.stat().st_mtime_ns, (demo_out / "solve").stat().st_mtime_ns
    summary = run_command("demo", ["preset=micro", f"out={demo_out}", "videos=1"])
    assert (weights.stat().st_mtime_ns, (demo_out / "solve").stat().st_mtime_ns) == before
    assert summary["seconds"]["compare"] < 30


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(demo_out, tmp_path):
    png = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={png}", "--window-size=1200,2000",
                    (demo_out / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=60)
    import imageio.v3 as iio

    image = iio.imread(png)[..., :3].astype(int)
    assert image.shape[:2] == (2000, 1200)
    assert image.std() > 20  # not a blank page: text, tables and plots rendered
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # coloured plots, not only text


def test_html_report_escapes_and_inlines(tmp_path):
    path = html_report.write_page(tmp_path / "r.html", "a<b", [
        ("t", [html_report.table([{"name": "<x>", "value": 0.12345}], "name")])])
    text = path.read_text()
    assert "a&lt;b" in text and "&lt;x&gt;" in text and "0.123" in text
