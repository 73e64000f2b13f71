"""The comparison dashboard, opened in headless Chromium: the plot renders a marker per model on both fronts'
subplots, the table has a row per configuration and sorts numerically on a click, and the page needs no network.

A screenshot and the HTML are kept in ``$FINDISTILL_TEST_ARTIFACTS`` (default ``.test-artifacts/`` in the repo).
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from browser import Chromium, chromium_or_skip
from conftest import REPO

from findistill.reports.dashboard import ROLE_COLOURS, write_dashboard
from findistill.reports.table import Model, Row, group, mark_fronts

LATENCY, SIZE = "latency_cpu_b1_ms_p50", "model_size_mb"
#: the models, sorted by F1 (as the table shows them); "distill L6" has three seeds, "distill L2" no F1
MODELS = [
    ("bert-base teacher", "teacher", "pytorch-fp32", [0.912], 110.0, 430.0),
    ("distill L6", "student", "pytorch-fp32", [0.878, 0.884, 0.890], 40.0, 90.0),
    ("distill L6 int8", "quantized", "onnxruntime-int8", [0.881], 9.8, 23.0),
    ("distill L4", "student", "pytorch-fp32", [0.861], 12.5, 60.0),  # L6 int8 beats it: on no front
    ("distill L4 int8", "quantized", "onnxruntime-int8", [0.852], 3.2, 16.0),
    ("distill L2", "student", "pytorch-fp32", [math.nan], 2.0, 8.0),  # not evaluated: in the table, not the plot
]
PLOTTED = [label for label, *_, scores, _, _ in MODELS if not math.isnan(scores[0])]
ON_FRONTS = ["bert-base teacher", "distill L6", "distill L6 int8", "distill L4 int8"]
#: the browser window (CSS px) of the probe and the screenshot
SIZE_PX = (1400, 1100)

#: appended to a copy of the page: once plotly has drawn, reads the rendered DOM, clicks column titles, and leaves
#: what it saw as JSON in <pre id="probe"> for --dump-dom
PROBE = """
<pre id="probe"></pre>
<script>
(function () {
  function texts(selector) {
    return Array.from(document.querySelectorAll(selector), function (e) { return e.textContent.trim(); });
  }
  function count(selector) { return document.querySelectorAll(selector).length; }
  function box(e) { var r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom}; }
  function overlap(a, b) { return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b; }
  function inside(a, b) { return a.l >= b.l - 0.5 && a.r <= b.r + 0.5 && a.t >= b.t - 0.5 && a.b <= b.b + 0.5; }
  function order() { return texts('#comparison tbody tr td:first-child'); }
  function click(title) {
    Array.from(document.querySelectorAll('#comparison th'))
      .filter(function (th) { return th.textContent === title; })[0].click();
    return order();
  }
  function probe(tries) {
    if (!document.querySelector('#fronts .scatterlayer .points') && tries > 0) {
      return setTimeout(function () { probe(tries - 1); }, 100);
    }
    var seen = {svgs: count('#fronts svg.main-svg'), legend: texts('#fronts .legend .traces .legendtext'),
                rows: count('#comparison tbody tr'), frontRows: texts('#comparison tbody tr.front td:first-child'),
                images: Array.from(document.querySelectorAll('.images img'), function (i) { return i.naturalWidth; }),
                subplots: {}};
    ['xy', 'x2y2'].forEach(function (axes) {
      var layer = '#fronts .subplot.' + axes + ' .scatterlayer ';
      var area = box(document.querySelector('#fronts .draglayer .' + axes + ' rect.nsewdrag'));
      var labels = Array.from(document.querySelectorAll(layer + '.trace .textpoint text'));
      var bars = Array.from(document.querySelectorAll(layer + '.trace .errorbar path.yerror'), box)
        .filter(function (b) { return b.b - b.t > 1; });  // sd 0 draws a flat cap under the marker
      seen.subplots[axes] = {markers: count(layer + '.trace .points path.point'),
                             labels: texts(layer + '.trace .textpoint text'),
                             errorBars: count(layer + '.trace .errorbar path.yerror'),
                             frontLines: count(layer + '.trace path.js-line'),
                             clipped: labels.filter(function (t) { return !inside(box(t), area); })
                               .map(function (t) { return t.textContent; }),
                             crossed: labels.filter(function (t) {
                               return bars.some(function (b) { return overlap(box(t), b); });
                             }).map(function (t) { return t.textContent; })};
    });
    seen.initial = order();
    seen.latencyUp = click('CPU b1 ms');
    seen.latencyDown = click('CPU b1 ms');
    seen.modelUp = click('model');
    document.getElementById('probe').textContent = JSON.stringify(seen);
  }
  window.addEventListener('load', function () { probe(50); });
})();
</script>
"""


def rows() -> list[Row]:
    models = [Model(label=label, key=label, role=role, runtime=runtime, f1=f1, run_id=f"{label}-{seed}",
                    uri=f"runs:/{label}-{seed}/model", costs={LATENCY: latency, SIZE: size})
              for label, role, runtime, scores, latency, size in MODELS for seed, f1 in enumerate(scores)]
    return mark_fronts(group(models))


def png_bytes(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "comparison.html"
    return write_dashboard(rows(), path, title="findistill comparison (test)", split="test",
                           notes=["Latencies on 1 CPU thread."], images={"vocabulary coverage": png_bytes(120, 80)})


@pytest.fixture(scope="module")
def seen(chromium, dashboard) -> dict:
    """What :data:`PROBE` saw in a copy of the dashboard rendered by Chromium."""
    probed = dashboard.with_name("probed.html")
    probed.write_text(dashboard.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium.dump_dom(probed, size=SIZE_PX)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found and found.group(1), f"the probe left nothing (plotly never drew?); the DOM starts {dom[:300]!r}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("FINDISTILL_TEST_ARTIFACTS") or REPO / ".test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_page_loads_no_script_from_the_network(dashboard):
    page = dashboard.read_text(encoding="utf-8")

    assert re.findall(r"<script[^>]*\bsrc=", page, flags=re.IGNORECASE) == []  # plotly.js is inlined
    assert re.findall(r"<link[^>]*\bhref=[\"']?(?:https?:)?//", page, flags=re.IGNORECASE) == []
    assert "Plotly.newPlot" in page


def test_chromium_renders_a_marker_per_model_the_fronts_and_the_table(seen):
    assert seen["svgs"] >= 2  # plotly draws the plot and its overlays as svg.main-svg
    assert seen["legend"] == ["quantized", "student", "teacher", "Pareto front"]
    for axes in ("xy", "x2y2"):  # F1 vs latency, F1 vs size
        assert seen["subplots"][axes]["markers"] == len(PLOTTED), axes
        assert sorted(seen["subplots"][axes]["labels"]) == sorted(PLOTTED), axes
        assert seen["subplots"][axes]["errorBars"] == len(PLOTTED), axes
        assert seen["subplots"][axes]["frontLines"] == 1, axes
    assert seen["rows"] == len(MODELS)
    assert seen["initial"] == [label for label, *_ in MODELS]
    assert sorted(seen["frontRows"]) == sorted(ON_FRONTS)
    assert seen["images"] == [120]


def test_clicking_a_column_title_sorts_numerically_then_reverses(seen):
    by_latency = ["distill L2", "distill L4 int8", "distill L6 int8", "distill L4", "distill L6", "bert-base teacher"]
    assert seen["latencyUp"] == by_latency  # 2.0 < 3.2 < 9.8 < 12.5 < 40 < 110, not "110" < "12.5" < "2.0"
    assert seen["latencyDown"] == by_latency[::-1]
    assert seen["modelUp"] == ["bert-base teacher", "distill L2", "distill L4", "distill L4 int8", "distill L6",
                               "distill L6 int8"]


def test_a_screenshot_shows_the_plot(chromium, dashboard, artifacts):
    from PIL import Image

    shutil.copyfile(dashboard, artifacts / "dashboard.html")
    png = chromium.screenshot(dashboard, artifacts / "dashboard.png", size=SIZE_PX)

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 30_000, png.stat().st_size  # a blank page of this size is a few kB
    with Image.open(png) as image:
        assert image.size == SIZE_PX
        pixels = {rgb: n for n, rgb in image.convert("RGB").getcolors(maxcolors=1 << 24)}
    assert len(pixels) > 200  # text, markers, grid lines: not a blank or single-colour page
    for role, colour in ROLE_COLOURS.items():  # the markers and legend symbols of every role were painted
        assert pixels.get(tuple(bytes.fromhex(colour[1:])), 0) > 100, role


def test_every_point_label_is_inside_its_subplot_and_clear_of_error_bars(seen):
    for axes in ("xy", "x2y2"):
        assert seen["subplots"][axes]["clipped"] == [], axes
        assert seen["subplots"][axes]["crossed"] == [], axes
