"""Pipeline traces and the playground: real, deterministic runs; validation; pages and API."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.bank.files import read_bank
from app.config import Settings
from app.models import SandboxRun
from app.sandbox.client import Sandbox
from app.sandbox.protocol import (
    LayerOutput,
    LayerShape,
    PipelineJob,
    Prediction,
    SnippetJob,
    Stage,
    Verdict,
)
from app.sandbox.specs import SCHEDULERS
from app.traces import charts
from app.traces.playground import SUGGESTED
from app.traces.service import Epoch, TraceView, observations
from tests.conftest import QUESTIONS, ROOT

LESSON = "lr-schedulers"
SPEC = read_bank(QUESTIONS)[0].pattern.pipeline
assert SPEC is not None


def _reference_lrs(
    sandbox: Sandbox,
    name: str,
    params: dict[str, Any],
    steps: int,
    metrics: list[float] | None = None,
) -> list[float]:
    """torch's own LR sequence, computed by a plain loop — a path independent of ours."""
    if name == "SequentialLR":
        build = (
            f"s = lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt), "
            f"lr_scheduler.ExponentialLR(opt, gamma=0.8)], **{params!r})"
        )
    else:
        build = f"s = lr_scheduler.{name}(opt, **{params!r})"
    step = "s.step(metrics[i])" if name == "ReduceLROnPlateau" else "s.step()"
    code = textwrap.dedent(f"""
        import json, torch
        from torch.optim import lr_scheduler
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        {build}
        metrics = {metrics or [1.0] * steps!r}
        seen = []
        for i in range({steps}):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            {step}
        print(json.dumps(seen))
    """)
    result = sandbox.run(SnippetJob(code=code))
    assert result.status is Verdict.OK, result
    return list(json.loads(result.stdout))


def _params(name: str, epochs: int) -> dict[str, Any]:
    return {k: (epochs if v == "epochs" else v) for k, v in SUGGESTED.get(name, {}).items()}


def _play(client: TestClient, name: str, **body: Any) -> Any:
    params = body.pop("params", _params(name, body.get("epochs", 10)))
    if name == "SequentialLR" and "schedulers" not in params:
        params["schedulers"] = [
            {"scheduler": "LinearLR", "params": {}},
            {"scheduler": "ExponentialLR", "params": {"gamma": 0.8}},
        ]
    return client.post("/api/playground", json={"scheduler": name, "params": params, **body})


# --- the lesson's trace ---------------------------------------------------------------------


def test_the_lesson_trains_at_0_1_then_0_05(client: TestClient) -> None:
    trace = client.get(f"/api/patterns/{LESSON}/trace").json()
    assert [e["epoch"] for e in trace["epochs"]] == list(range(10))  # from 0, as range(10)
    assert [e["lr"] for e in trace["epochs"]] == [0.1] * 5 + [0.05] * 5
    assert trace["lr_changes"] == [5]
    assert trace["lr_after_last"] == 0.025
    assert "0.025 — no epoch trains with it" in trace["epochs"][-1]["observations"][-1]
    assert trace["epochs"][0]["observations"][0].startswith("First epoch (epoch 0), at")
    assert (
        "The scheduler cut the learning rate from 0.1 to 0.05 (×0.5) at the end of epoch 4: "
        "this epoch "
        "trains at the rate set by 5 calls of scheduler.step()."
    ) in trace["epochs"][5]["observations"]
    losses = [e["test_loss"] for e in trace["epochs"]]
    assert losses[-1] < losses[0]  # it really learned
    assert trace["epochs"][-1]["test_accuracy"] > 0.85


def test_the_trace_has_real_shapes_and_a_real_prediction(client: TestClient) -> None:
    trace = client.get(f"/api/patterns/{LESSON}/trace").json()
    stages = {stage["name"]: stage for stage in trace["stages"]}
    assert "1000 rows × 10 features" in stages["Data loading"]["output"]
    assert stages["Train/test split"]["output"] == "train [800, 10], test [200, 10]"
    training = stages["Training with the scheduler"]["output"]
    assert training == "10 epochs (0–9), scheduler stepped once at the end of each"
    layers = stages["Model"]["layers"]
    assert [layer["weight"] for layer in layers] == [[10, 10], None, [2, 10]]
    prediction = trace["prediction"]
    assert len(prediction["input"]) == 10 and len(prediction["probabilities"]) == 2
    assert abs(sum(prediction["probabilities"]) - 1) < 1e-3
    relu = prediction["layers"][1]["values"]
    assert min(relu) >= 0
    assert prediction["predicted"] == max(range(2), key=lambda i: prediction["probabilities"][i])


def test_the_same_spec_trains_to_the_same_trace_bit_for_bit(sandbox: Sandbox) -> None:
    job = PipelineJob(spec=SPEC)
    first, second = sandbox.run(job), sandbox.run(job)
    assert first.status is Verdict.OK
    assert first.data == second.data
    assert first.data is not None
    assert [e.epoch for e in first.data.epochs] == list(range(SPEC.epochs))


def test_a_page_view_never_retrains(
    client: TestClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_runs(job: object) -> None:
        raise AssertionError("the trace page ran the pipeline")

    monkeypatch.setattr(sandbox, "run", no_runs)
    assert client.get(f"/patterns/{LESSON}/trace").status_code == 200
    assert client.get(f"/api/patterns/{LESSON}/trace").status_code == 200


def test_the_trace_page_shows_stages_table_charts_and_prediction(
    client: TestClient,
) -> None:
    page = client.get(f"/patterns/{LESSON}/trace")
    html = page.text
    for text in (
        "Data flow — 4 stages",
        "Training, epoch by epoch",
        "Prediction trace",
        "Key insight",
        "Loss per epoch",
        "Learning rate in force during each epoch",
        "torch stores a Linear layer",
    ):
        assert text in html, text
    assert html.count('<svg class="chart-wide"') == 3
    assert html.count('<svg class="chart-narrow"') == 3  # each drawn again for a phone
    assert html.count('<tr class="lr-changed">') == 1


def test_a_constant_rate_keeps_bouncing_where_the_lessons_steplr_settles(
    client: TestClient,
) -> None:
    """The lesson's claim, on real runs: its StepLR settles the test loss lower than the same
    pipeline at a constant rate (bench.traces measures it over more seeds)."""
    lesson = client.get(f"/api/patterns/{LESSON}/trace").json()["epochs"]
    response = _play(client, "ConstantLR", params={"factor": 1.0})
    assert response.status_code == 200, response.text
    constant = response.json()["epochs"]
    assert [e["lr"] for e in constant] == [0.1] * 10

    # Until the cut the two are the same run, bit for bit: what differs after is the schedule.
    def numbers(epochs: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
        return [(e["train_loss"], e["test_loss"], e["test_accuracy"]) for e in epochs]

    assert numbers(constant[:5]) == numbers(lesson[:5])
    assert numbers(constant[5:]) != numbers(lesson[5:])
    loss = {
        "constant": [e["test_loss"] for e in constant],
        "StepLR": [e["test_loss"] for e in lesson],
    }
    assert loss["constant"][-1] > 1.3 * loss["StepLR"][-1]
    after_cut = {name: statistics.mean(values[5:]) for name, values in loss.items()}
    assert after_cut["constant"] > 1.3 * after_cut["StepLR"]
    # At 0.1 it keeps bouncing (up by half again at least once after the cut); StepLR ends
    # below every epoch of it after the cut.
    assert any(b > 1.5 * a for a, b in itertools.pairwise(loss["constant"][5:]))
    assert loss["StepLR"][-1] < min(loss["constant"][5:])


# --- one way to count epochs ------------------------------------------------------------------

COUNTING = "Epochs count from 0, as <code>for epoch in range("


def _path_points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (c[1:].split(",") for c in path.split())]


@dataclass(frozen=True)
class Axis:
    """A drawn chart's x axis, read from the page: its labels, where they are, and how far
    right the chart's lines reach."""

    labels: list[str]
    at: list[float]
    reach: float


def _x_axes(html: str) -> list[Axis]:
    """The x axis of every wide chart of a page."""
    axes = []
    for svg in html.split('<svg class="chart-wide"')[1:]:
        svg = svg.split("</svg>")[0]
        ticks = re.findall(
            r'<text class="tick" x="([\d.]+)" y="[\d.]+" text-anchor="middle">([^<]*)</text>', svg
        )
        paths = re.findall(r' d="([^"]+)"', svg)
        reach = max(x for path in paths for x, _ in _path_points(path))
        axes.append(Axis([label for _, label in ticks], [float(x) for x, _ in ticks], reach))
    return axes


def _table_epochs(html: str) -> list[str]:
    table = html.split('<table class="epochs">')[1].split("</table>")[0]
    return re.findall(r'<th scope="row">([^<]*)</th>', table)


def _chart_tables_first_x(html: str) -> list[str]:
    """The first x value of each chart's table of numbers."""
    return [
        re.findall(r'<th scope="row">([^<]*)</th>', part.split("</table>")[0])[0]
        for part in html.split('<details class="chart-data">')[1:]
    ]


def test_the_trace_counts_epochs_from_0_in_its_table_and_on_every_axis(
    client: TestClient,
) -> None:
    html = client.get(f"/patterns/{LESSON}/trace").text
    assert html.count(COUNTING) == 1  # said once, where the table begins
    assert (
        "range(10)</code> does: epoch e trains at the rate set by e calls to "
        "<code>scheduler.step()</code>."
    ) in html
    epochs = [str(e) for e in range(10)]
    assert _table_epochs(html) == epochs
    axes = _x_axes(html)
    assert len(axes) == 3  # loss, accuracy, learning rate: the same epochs, at the same places
    for axis in axes:
        assert axis.labels == epochs
        assert axis.at == axes[0].at
        assert axis.reach == pytest.approx(axis.at[-1])  # no line runs on to an epoch 10
    assert _chart_tables_first_x(html) == ["0"] * 3
    assert "After epoch 9, the last, the scheduler set the learning rate to 0.025" in html


def test_the_playground_counts_epochs_from_0_in_its_table_and_on_every_axis(
    client: TestClient,
) -> None:
    steplr = f"/patterns/{LESSON}/playground?run=1&scheduler=StepLR&p.step_size=5&p.gamma=0.5"
    trained = client.get(f"{steplr}&mode=train&epochs=12").text
    assert trained.count(COUNTING) == 1
    assert _table_epochs(trained) == [str(e) for e in range(12)]
    axes = _x_axes(trained)
    assert len(axes) == 3
    for axis in axes:  # the lesson's 10 epochs dashed under these 12: one scale, from 0
        assert axis.labels[0] == "0" and axis.labels == axes[0].labels
        assert axis.at == axes[0].at and axis.reach == pytest.approx(axes[0].reach)
    assert _chart_tables_first_x(trained) == ["0"] * 3
    changed = trained.split('<tr class="lr-changed">')[1]
    assert changed.startswith('\n      <th scope="row">5</th>')  # 5 calls of step(): 0.05
    lr_only = client.get(f"{steplr}&mode=lr-only&epochs=10").text
    (axis,) = _x_axes(lr_only)
    assert axis.labels == [str(e) for e in range(10)]
    assert axis.reach == pytest.approx(axis.at[-1])
    assert "The learning rate changed at step 5 (counted from 0" in lr_only


def test_a_code_answers_comparison_chart_counts_epochs_from_0() -> None:
    target, mine = [0.1] * 5 + [0.05] * 5, [0.1] * 4 + [0.05] * 6
    chart = charts.comparison_chart(target, mine, 4)
    assert [t.label for t in chart.x_ticks] == [str(e) for e in range(10)]
    reach = max(x for line in chart.lines for x, _ in _path_points(line.path))
    assert reach == pytest.approx(chart.x_ticks[-1].at)  # epoch 9 is the last on the axis
    assert chart.markers[0].at == pytest.approx(chart.x_ticks[4].at)  # differs at epoch 4
    assert [row.x for row in chart.rows] == [str(e) for e in range(10)]


# --- the playground -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_runs_and_matches_torchs_own_sequence(
    client: TestClient, sandbox: Sandbox, name: str
) -> None:
    lr_only = _play(client, name, mode="lr-only", epochs=30)
    assert lr_only.status_code == 200, lr_only.text
    lrs = [e["lr"] for e in lr_only.json()["epochs"]]
    params = _params(name, 30)
    assert lrs == pytest.approx(_reference_lrs(sandbox, name, params, 30), rel=1e-12)

    trained = _play(client, name, mode="train", epochs=12)
    assert trained.status_code == 200, trained.text
    epochs = trained.json()["epochs"]
    metrics = [e["test_loss"] for e in epochs] if name == "ReduceLROnPlateau" else None
    expected = _reference_lrs(sandbox, name, _params(name, 12), 12, metrics)
    assert [e["lr"] for e in epochs] == pytest.approx(expected, rel=1e-12)
    assert all(e["test_loss"] is not None for e in epochs)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"scheduler": "ExponentialLR", "params": {}}, "params.gamma", "gamma is required"),
        (
            {"scheduler": "OneCycleLR", "params": {"max_lr": 0.1, "total_steps": 5}},
            "params.total_steps",
            "use at least 10",
        ),
        (
            {"scheduler": "OneCycleLR", "params": {"max_lr": 0.1}},
            "params.total_steps",
            "total_steps is required",
        ),
        ({"scheduler": "Adam", "params": {}}, "scheduler", "must be one of StepLR"),
        (
            {"scheduler": "StepLR", "params": {"step_size": 5, "decay": 0.1}},
            "params.decay",
            "StepLR has no parameter 'decay'",
        ),
        (
            {"scheduler": "StepLR", "params": {"step_size": "five"}},
            "params.step_size",
            "step_size must be a whole number",
        ),
        ({"scheduler": "StepLR", "params": {"step_size": 0}}, "params.step_size", "at least 1"),
        (
            {"scheduler": "MultiStepLR", "params": {"milestones": [5, 3]}},
            "params.milestones",
            "increasing order",
        ),
        (
            {
                "scheduler": "CyclicLR",
                "params": {"base_lr": 0.01, "max_lr": 0.1, "mode": "sawtooth"},
            },
            "params.mode",
            "must be one of triangular",
        ),
        (
            {"scheduler": "StepLR", "params": {"step_size": 5}, "epochs": 500},
            "epochs",
            "at most 200",
        ),
        (
            {"scheduler": "StepLR", "params": {"step_size": 5}, "mode": "lr-only", "epochs": 5000},
            "epochs",
            "at most 1000",
        ),
        (
            {
                "scheduler": "SequentialLR",
                "params": {
                    "milestones": [3],
                    "schedulers": [
                        {"scheduler": "StepLR", "params": {}},
                        {"scheduler": "ExponentialLR", "params": {}},
                    ],
                },
            },
            "params.schedulers.0.params.step_size",
            "step_size is required",
        ),
        ({"scheduler": "ConstantLR", "params": {"factor": 2.0}}, "params", "torch refused"),
        (
            {"scheduler": "MultiStepLR", "params": {"milestones": [1.5, 2]}},
            "params.milestones",
            "whole numbers",
        ),
        (
            {"scheduler": "MultiStepLR", "params": {"milestones": [True, 2]}},
            "params.milestones",
            "whole numbers",
        ),
        ({"scheduler": "ExponentialLR", "params": {"gamma": [0.5]}}, "params.gamma", "number"),
        (
            {
                "scheduler": "SequentialLR",
                "params": {
                    "milestones": [3],
                    "schedulers": [
                        {"scheduler": "StepLR", "params": {"step_size": 2}},
                        {"scheduler": "ExponentialLR", "params": [1]},
                    ],
                },
            },
            "params.schedulers.1.params",
            "must be an object",
        ),
    ],
)
def test_invalid_parameters_are_422_naming_the_parameter(
    client: TestClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = client.post("/api/playground", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert message in response.json()["detail"]


def test_playground_results_are_cached_by_spec(client: TestClient, db: Session) -> None:
    def count() -> int:
        db.rollback()
        kinds = ("pipeline", "lr-only")
        return db.scalar(select(func.count()).where(SandboxRun.kind.in_(kinds))) or 0

    before = count()
    first = _play(client, "ExponentialLR", params={"gamma": 0.7}).json()
    assert count() == before + 1
    assert _play(client, "ExponentialLR", params={"gamma": 0.7}).json() == first
    assert count() == before + 1


def test_the_playground_page_reproduces_a_state_from_its_url(client: TestClient) -> None:
    url = (
        f"/patterns/{LESSON}/playground?run=1&scheduler=ExponentialLR&mode=train"
        "&epochs=8&p.gamma=0.6"
    )
    first, second = client.get(url), client.get(url)
    assert first.status_code == 200
    assert "Result: trained for 8 epochs" in first.text
    assert 'value="0.6"' in first.text
    assert first.text == second.text
    assert first.text.count('<svg class="chart-wide"') == 3


def test_the_playground_highlights_jumps_not_a_curve_that_moves_every_epoch(
    client: TestClient,
) -> None:
    playground = f"/patterns/{LESSON}/playground?run=1&mode=train&epochs=10"
    steps = client.get(f"{playground}&scheduler=StepLR&p.step_size=3&p.gamma=0.5").text
    assert steps.count('<tr class="lr-changed">') == 3  # its milestones: epochs 3, 6, 9
    assert 'class="marker"' in steps and "learning rate jumps" in steps
    cosine = client.get(f"{playground}&scheduler=CosineAnnealingLR&p.T_max=10").text
    assert "lr-changed" not in cosine and 'class="marker"' not in cosine
    assert "changes smoothly" in cosine  # and the table says why nothing is highlighted


def test_the_playground_says_its_counts_in_words(client: TestClient) -> None:
    steplr = f"/patterns/{LESSON}/playground?run=1&scheduler=StepLR&p.step_size=5&p.gamma=0.5"
    one_step = client.get(f"{steplr}&mode=lr-only&epochs=1").text
    assert "Result: 1 scheduler step, no training</h2>" in one_step
    assert "The learning rate never changed: it was 0.1 at its one step." in one_step
    assert "at steps none" not in one_step and "at step none" not in one_step
    twelve = client.get(f"{steplr}&mode=lr-only&epochs=12").text
    assert "The learning rate changed at steps 5, 10 (counted from 0: step s runs at" in twelve
    trained = client.get(f"{steplr}&mode=train&epochs=1").text
    assert "Result: trained for 1 epoch</h2>" in trained


def test_a_trace_of_one_stage_and_one_layer_says_so_in_the_singular(app: FastAPI) -> None:
    layer = LayerShape(name="Linear", weight=[1, 1], bias=[1])
    trace = TraceView(
        "pipeline",
        "k",
        {},
        [Epoch(epoch=0, lr=0.1, lr_after=0.1, train_loss=1.0, test_loss=1.0, test_accuracy=0.5)],
        stages=[Stage(name="Model", input="x", output="y", layers=[layer])],
        prediction=Prediction(
            input=[1.0],
            layers=[LayerOutput(name="Linear", values=[1.0])],
            probabilities=[1.0],
            predicted=0,
            label=0,
        ),
        parameters=1,
    )
    html = app.state.templates.get_template("traces/_trace_body.html").render(
        trace=trace, charts=[]
    )
    assert "Data flow — 1 stage</h2>" in html and "1 parameter." in html
    assert "one test sample through 1 layer</h2>" in html


def test_a_run_that_diverges_says_so_in_words(client: TestClient) -> None:
    url = (
        f"/patterns/{LESSON}/playground?run=1&scheduler=CyclicLR&mode=train&epochs=4"
        "&p.base_lr=0.01&p.max_lr=1e10&p.step_size_up=2&p.cycle_momentum=false"
    )
    page = client.get(url)
    assert page.status_code == 200, page.text
    assert '<td class="num">nan</td>' in page.text  # the numbers as they were
    notice = page.text.split('class="notice diverged"')[1].split("</p>")[0]
    assert "Training diverged at epoch" in notice and "learning rate was too large" in notice
    assert "Training diverged: " in page.text  # and the epoch it happened says why


def test_the_playground_form_comes_from_the_real_signature(client: TestClient) -> None:
    html = client.get(f"/patterns/{LESSON}/playground?scheduler=CyclicLR").text
    for param in ("base_lr", "max_lr", "step_size_up", "mode", "cycle_momentum"):
        assert f'name="p.{param}"' in html, param
    assert '<option value="triangular2">' in html
    assert "scale_fn" not in html  # a callable cannot come from a form


def test_the_playground_page_shows_errors_beside_the_field(client: TestClient) -> None:
    page = client.get(f"/patterns/{LESSON}/playground?run=1&scheduler=ExponentialLR&p.gamma=")
    assert page.status_code == 422
    assert 'id="p.gamma-error"' in page.text and "gamma is required" in page.text


def test_sequential_lr_restarts_the_second_scheduler_in_the_playground(
    client: TestClient,
) -> None:
    body = client.get(
        f"/patterns/{LESSON}/playground?run=1&scheduler=SequentialLR&p.milestones=3"
        "&first=ConstantLR&first.factor=0.5&first.total_iters=3&second=StepLR"
        "&second.step_size=2&second.gamma=0.5&mode=lr-only&epochs=8"
    )
    assert body.status_code == 200, body.text
    api = _play(
        client,
        "SequentialLR",
        mode="lr-only",
        epochs=8,
        params={
            "milestones": [3],
            "schedulers": [
                {"scheduler": "ConstantLR", "params": {"factor": 0.5, "total_iters": 3}},
                {"scheduler": "StepLR", "params": {"step_size": 2, "gamma": 0.5}},
            ],
        },
    ).json()
    assert [e["lr"] for e in api["epochs"]] == [0.05, 0.05, 0.05, 0.1, 0.1, 0.05, 0.05, 0.025]


def test_a_playground_epoch_count_that_is_not_a_number_is_a_form_error(
    client: TestClient,
) -> None:
    page = client.get(f"/patterns/{LESSON}/playground?run=1&scheduler=StepLR&epochs=%C2%B2")
    assert page.status_code == 422 and "must be a whole number" in page.text


def test_cyclic_schedulers_leave_the_lessons_momentum_alone(client: TestClient) -> None:
    for scheduler in ("OneCycleLR", "CyclicLR"):
        html = client.get(f"/patterns/{LESSON}/playground?scheduler={scheduler}").text
        select = html.split('name="p.cycle_momentum"')[1].split("</select>")[0]
        assert '<option value="false" selected>' in select, scheduler


def test_a_playground_flood_gets_503_before_it_can_starve_grading(
    client: TestClient, app: FastAPI
) -> None:
    gate = app.state.playground_gate
    taken = 0
    while gate.acquire(blocking=False):  # every playground place busy with someone's run
        taken += 1
    try:
        refused = _play(client, "ExponentialLR", params={"gamma": 0.123})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert "playground is busy" in refused.json()["detail"]
        assert taken >= 1
    finally:
        for _ in range(taken):
            gate.release()
    assert _play(client, "ExponentialLR", params={"gamma": 0.123}).status_code == 200


# --- pure parts -----------------------------------------------------------------------------


def test_observations_say_what_happened() -> None:
    epochs = [
        {"lr": 0.1, "lr_after": 0.1, "train_loss": 1.0, "test_loss": 1.0, "test_accuracy": 0.5},
        {"lr": 0.1, "lr_after": 0.05, "train_loss": 0.8, "test_loss": 0.9, "test_accuracy": 0.6},
        {"lr": 0.05, "lr_after": 0.025, "train_loss": 0.7, "test_loss": 0.95, "test_accuracy": 0.6},
    ]
    first, second, third = observations(epochs)
    assert first == ["First epoch (epoch 0), at learning rate 0.1: no scheduler.step() yet."]
    assert second == ["Test loss fell 10%.", "Best test accuracy so far: 60.0%."]
    assert third[0] == (
        "The scheduler cut the learning rate from 0.1 to 0.05 (×0.5) at the end of epoch 1: "
        "this epoch trains at the rate set by 2 calls of scheduler.step()."
    )
    assert "while training loss fell" in third[1]
    assert "0.025 — no epoch trains with it" in third[-1]


def test_observations_call_a_rising_test_loss_overfitting_only_once_it_lasts() -> None:
    def epoch(train: float, test: float) -> dict[str, float]:
        return {
            "lr": 0.1,
            "lr_after": 0.1,
            "train_loss": train,
            "test_loss": test,
            "test_accuracy": 0.5,
        }

    notes = observations(
        [epoch(1.0, 1.0), epoch(0.9, 1.1), epoch(0.8, 1.2), epoch(0.7, 1.3), epoch(0.6, 1.0)]
    )
    assert "a rise or two can be the bounce of the last steps" in notes[1][0]
    assert "a rise or two" in notes[2][0]
    assert notes[3][0] == (
        "Test loss rose 8% while training loss fell, 3 epochs running: the model is starting "
        "to fit the training set more than the task."
    )
    assert notes[4] == ["Test loss fell 23%."]


def test_observations_name_a_non_finite_loss_and_only_that() -> None:
    def epoch(lr: float, loss: float) -> dict[str, float]:
        return {
            "lr": lr,
            "lr_after": lr,
            "train_loss": loss,
            "test_loss": loss,
            "test_accuracy": 0.1,
        }

    nan, inf = float("nan"), float("inf")
    first, rose, gone, still, back = observations(
        [epoch(0.1, 1.0), epoch(1e9, 50.0), epoch(1e10, nan), epoch(1e10, inf), epoch(0.1, 2.0)]
    )
    assert not any("diverged" in note for note in first + rose)  # a loss rising is not that
    assert [n for n in gone if "diverged" in n] == [
        "Training diverged: the training loss is nan (not a number) — the learning rate "
        "(1e+10) was too large, and every step overshot further."
    ]
    assert still == ["The loss is still inf (infinite): training has not recovered."]
    assert not any("%" in note for note in still + back)  # no "rose inf%" from a non-number
    trace = TraceView(
        "pipeline",
        "k",
        {},
        [
            Epoch(epoch=i, lr=0.1, lr_after=0.1, train_loss=x, test_loss=x)
            for i, x in enumerate([1.0, nan, 2.0])
        ],
    )
    assert trace.diverged_at == 1
    assert (
        TraceView("lr-only", "k", {}, [Epoch(epoch=0, lr=1e10, lr_after=1e10)]).diverged_at is None
    )


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0.0, 0.1, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]),
        (0.12, 0.64, [0.0, 0.2, 0.4, 0.6, 0.8]),
        (0.8, 0.935, [0.8, 0.85, 0.9, 0.95]),
        (4e-7, 0.1, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]),
    ],
)
def test_nice_ticks(low: float, high: float, ticks: list[float]) -> None:
    assert charts.nice_ticks(low, high) == pytest.approx(ticks)


def _path_points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (c[1:].split(",") for c in path.split())]


def test_the_learning_rate_is_drawn_as_a_staircase_over_the_same_epochs() -> None:
    chart = charts.line_chart(
        "lr",
        [charts.Series("lr", [(0, 0.1), (1, 0.1), (2, 0.05)], step=True)],
        x_label="epoch",
        y_label="learning rate",
        y_from_zero=True,
    )
    (line,) = chart.lines
    points = _path_points(line.path)
    assert len(points) == 5  # 0→1 flat, 1→2 flat, down at 2 (epoch 2 trains at 0.05)
    assert points[3][1] == points[2][1] and points[3][1] != points[4][1]  # flat, then the drop
    assert points[3][0] == points[4][0]  # the drop is at epoch 2 itself
    widths = [points[i + 1][0] - points[i][0] for i in (0, 2)]
    assert max(widths) - min(widths) < 0.5  # every epoch as wide
    # it ends at the last epoch, as a loss line over the same epochs does: not one past it
    assert [t.label for t in chart.x_ticks] == ["0", "1", "2"]
    assert max(x for x, _ in points) == chart.x_ticks[-1].at == chart.frame.right


def _cosine(t_max: int, steps: int) -> list[float]:
    return [0.05 * (1 + math.cos(math.pi * (t % t_max) / t_max)) for t in range(steps)]


@pytest.mark.parametrize(
    ("lrs", "jumps"),
    [
        ([0.1] * 5 + [0.05] * 5, [5]),  # StepLR: its step
        ([0.1] * 3 + [0.05] * 4 + [0.025] * 3, [3, 7]),  # MultiStepLR: its milestones
        ([0.1, 0.05, 0.05, 0.05], [1]),  # a step right after the first epoch
        (_cosine(10, 10), []),  # cosine: it changes every epoch, smoothly
        ([0.1 * 0.8**t for t in range(10)], []),  # exponential
        ([0.1 * min(1.0, (1 + 2 * t / 4) / 3) for t in range(10)], []),  # a linear warm-up
        (_cosine(3, 10), [3, 6, 9]),  # warm restarts: the restarts, not the decay between
        ([0.01, 0.1] * 5, []),  # it flips every epoch: a highlight would mean nothing
        ([0.1] * 10, []),
    ],
)
def test_only_jumps_of_the_learning_rate_are_highlighted(
    lrs: list[float], jumps: list[int]
) -> None:
    trace = TraceView(
        kind="lr-only",
        key="k",
        spec={},
        epochs=[Epoch(epoch=n, lr=lr, lr_after=lr) for n, lr in enumerate(lrs)],
    )
    assert trace.lr_jumps == jumps
    (chart,) = charts.trace_charts(trace)
    assert [m.label for m in chart.markers] == ["learning rate jumps"] * len(jumps)


def test_a_chart_is_drawn_for_a_phone_too_and_carries_its_numbers_as_a_table() -> None:
    chart = charts.line_chart(
        "lr",
        [
            charts.Series("lesson", [(e, 0.1 * 0.5 ** (e // 5)) for e in range(20)], step=True),
            charts.Series("yours", [(e, 0.1) for e in range(10)], step=True),
        ],
        x_label="epoch",
        y_label="learning rate",
        y_from_zero=True,
    )
    narrow = chart.narrow
    assert narrow is not None and narrow.frame == charts.NARROW and chart.frame == charts.WIDE
    # fewer ticks on the narrow frame; only epochs that have data are labelled (not 20)
    assert [t.label for t in narrow.x_ticks] == ["0", "4", "8", "12", "16"]
    assert [t.label for t in chart.x_ticks] == [str(e) for e in range(0, 20, 2)]
    assert len(narrow.y_ticks) <= len(chart.y_ticks)
    assert all(narrow.frame.left <= t.at <= narrow.frame.right for t in narrow.x_ticks)
    # the table: one row per epoch, one column per series, blank where a series has none
    assert len(chart.rows) == 20
    assert chart.rows[0] == charts.Row("0", ["0.1", "0.1"])
    assert chart.rows[19] == charts.Row("19", ["0.0125", ""])


def test_the_web_process_never_imports_torch(settings: Settings) -> None:
    script = textwrap.dedent(f"""
        import sys
        from fastapi.testclient import TestClient
        from app.config import Settings
        from app.main import create_app
        settings = Settings(var_dir={str(settings.var_dir)!r}, sandbox_mode="off",
                            database_url={settings.database_url!r},
                            allowed_hosts=["testserver"])
        with TestClient(create_app(settings)) as client:
            for url in ("/", "/patterns/lr-schedulers", "/patterns/lr-schedulers/trace",
                        "/api/patterns/lr-schedulers/trace",
                        "/patterns/lr-schedulers/questions/lr-output-steplr-calls"):
                assert client.get(url).status_code == 200, url
        assert "torch" not in sys.modules, "the web process imported torch"
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_trace_missing_from_the_store_is_recorded_on_first_view(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.traces import service

    db.execute(delete(SandboxRun).where(SandboxRun.kind == "pipeline"))
    db.commit()
    monkeypatch.setattr(service, "_views", {})
    client.app.state.trace_pages.clear()  # type: ignore[attr-defined]
    assert client.get(f"/patterns/{LESSON}/trace").status_code == 200
    db.rollback()
    assert db.scalar(select(func.count()).where(SandboxRun.kind == "pipeline")) == 1
