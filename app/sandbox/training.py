"""Train a pipeline from its spec and record everything a learner sees; step a scheduler alone.

Runs only inside the sandbox runner (imports torch), single-threaded: the same spec gives the
same numbers, bit for bit. The web side turns these numbers into observations and charts.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch
from torch.optim import lr_scheduler

from app.sandbox.specs import SCHEDULERS

NOT_PARAMETERS = {"self", "optimizer", "last_epoch", "verbose", "scale_fn", "schedulers"}
SAMPLE_ROWS = 3  # rows of real data shown per stage
DIGITS = 4  # numbers shown in stage samples and the prediction trace


# --- the playground's catalogue ------------------------------------------------------------


def _kind(annotation: str) -> tuple[str, list[str]]:
    """How a form asks for a parameter, from its annotation as torch writes it."""
    if choices := re.findall(r"'([^']+)'", annotation) if "Literal" in annotation else []:
        return "choice", choices
    if "Iterable[int]" in annotation or annotation.startswith("list[int]"):
        return "int-list", []
    if annotation.startswith("list[LRScheduler]"):
        return "schedulers", []
    if annotation.startswith("bool"):
        return "bool", []
    if annotation.startswith("int"):
        return "int", []
    return "float", []


def scheduler_catalog() -> dict[str, Any]:
    """Every playground scheduler with its real parameters and defaults, read from torch."""
    catalog = {}
    for name in SCHEDULERS:
        cls = getattr(lr_scheduler, name)
        params = []
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.name in NOT_PARAMETERS:
                continue
            kind, choices = _kind(str(parameter.annotation))
            required = parameter.default is inspect.Parameter.empty
            default = None if required else parameter.default
            if isinstance(default, list):
                default = default[0] if default else None
            params.append(
                {
                    "name": parameter.name,
                    "kind": kind,
                    "choices": choices,
                    "required": required,
                    "default": default,
                }
            )
        doc = (inspect.getdoc(cls) or name).split("\n\n")[0].replace("\n", " ")
        catalog[name] = {"doc": doc, "params": params}
    return catalog


# --- building ---------------------------------------------------------------------------------


def build_scheduler(optimizer: torch.optim.Optimizer, spec: dict[str, Any]) -> Any:
    """A scheduler from its spec (name, params, and for SequentialLR its schedulers)."""
    name = spec["name"]
    if name not in SCHEDULERS:
        raise ValueError(f"{name!r} is not a scheduler the playground offers")
    params = dict(spec.get("params") or {})
    if name == "SequentialLR":
        children = [build_scheduler(optimizer, child) for child in spec["schedulers"]]
        return lr_scheduler.SequentialLR(optimizer, children, **params)
    return getattr(lr_scheduler, name)(optimizer, **params)


def _step(scheduler: Any, metric: float) -> None:
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metric)
    else:
        scheduler.step()


def _rounded(values: torch.Tensor) -> list[Any]:
    return [round(float(v), DIGITS) if v.dim() == 0 else _rounded(v) for v in values]


# --- a pipeline ---------------------------------------------------------------------------


def _dataset(spec: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    data = spec["dataset"]
    generator = torch.Generator().manual_seed(data["seed"])
    features = torch.randn(data["rows"], data["features"], generator=generator)
    teacher = torch.randn(data["features"], data["classes"], generator=generator)
    noise = data["noise"] * torch.randn(data["rows"], data["classes"], generator=generator)
    labels = (features @ teacher + noise).argmax(dim=1)
    return features, labels


def _model(spec: dict[str, Any]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for layer in spec["model"]:
        if layer["type"] == "linear":
            layers.append(torch.nn.Linear(layer["inputs"], layer["outputs"]))
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _optimizer(spec: dict[str, Any], model: torch.nn.Module) -> torch.optim.Optimizer:
    config = spec["optimizer"]
    if config["name"] == "Adam":
        return torch.optim.Adam(model.parameters(), lr=config["lr"])
    return torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])


def _layer_name(layer: torch.nn.Module) -> str:
    if isinstance(layer, torch.nn.Linear):
        return f"Linear({layer.in_features} → {layer.out_features})"
    return type(layer).__name__


def record_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    """Train as the spec says; return stages, per-epoch numbers and a prediction trace."""
    features, labels = _dataset(spec)
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(spec["seed"]))
    train_size, test_size = spec["split"]["train"], spec["split"]["test"]
    train_idx, test_idx = order[:train_size], order[train_size : train_size + test_size]
    x_train, y_train = features[train_idx], labels[train_idx]
    x_test, y_test = features[test_idx], labels[test_idx]

    torch.manual_seed(spec["seed"])
    model = _model(spec)
    optimizer = _optimizer(spec, model)
    scheduler = build_scheduler(optimizer, spec["scheduler"])
    loss_fn = torch.nn.CrossEntropyLoss()
    batch_size = spec["batch_size"]
    batches = math.ceil(train_size / batch_size)

    epochs = []
    for epoch in range(spec["epochs"]):  # from 0: epoch e trains after e scheduler steps
        lrs = [float(group["lr"]) for group in optimizer.param_groups]
        # + 1: the split's order above is drawn from `seed` itself.
        shuffle = torch.randperm(
            train_size, generator=torch.Generator().manual_seed(spec["seed"] + epoch + 1)
        )
        model.train()
        total = 0.0
        for start in range(0, train_size, batch_size):
            batch = shuffle[start : start + batch_size]
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = float(loss_fn(logits, y_test))
            accuracy = float((logits.argmax(dim=1) == y_test).float().mean())
        _step(scheduler, test_loss)
        epochs.append(
            {
                "epoch": epoch,
                "lr": lrs[0],
                "lrs": lrs,
                "train_loss": total / train_size,
                "test_loss": test_loss,
                "test_accuracy": accuracy,
                "lr_after": float(optimizer.param_groups[0]["lr"]),
            }
        )

    return {
        "stages": _stages(spec, features, labels, x_train, x_test, model, batches),
        "epochs": epochs,
        "prediction": _prediction(model, x_test[0], int(y_test[0])),
        "parameters": sum(p.numel() for p in model.parameters()),
        "batches_per_epoch": batches,
    }


def _stages(
    spec: dict[str, Any],
    features: torch.Tensor,
    labels: torch.Tensor,
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    model: torch.nn.Sequential,
    batches: int,
) -> list[dict[str, Any]]:
    rows, cols = features.shape
    counts = torch.bincount(labels, minlength=spec["dataset"]["classes"]).tolist()
    layers = [
        {
            "name": _layer_name(layer),
            "weight": list(layer.weight.shape),
            "bias": list(layer.bias.shape),
        }
        if isinstance(layer, torch.nn.Linear)
        else {"name": _layer_name(layer)}
        for layer in model
    ]
    return [
        {
            "name": "Data loading",
            "input": f"{rows} × {cols} generated",
            "output": f"{rows} rows × {cols} features, labels {counts} per class",
            "sample": _rounded(features[:SAMPLE_ROWS]),
        },
        {
            "name": "Train/test split",
            "input": f"{rows} × {cols}",
            "output": f"train {list(x_train.shape)}, test {list(x_test.shape)}",
            "sample": _rounded(x_test[:SAMPLE_ROWS]),
        },
        {
            "name": "Model",
            "input": f"batch × {cols}",
            "output": f"batch × {spec['dataset']['classes']} logits",
            "layers": layers,
        },
        {
            "name": "Training with the scheduler",
            "input": f"{len(x_train)} rows, {batches} batches of ≤ {spec['batch_size']}",
            "output": f"{_epochs_counted(spec['epochs'])}, scheduler stepped once at the "
            "end of each",
        },
    ]


def _epochs_counted(epochs: int) -> str:
    """`10 epochs (0–9)`: how many, and how they are counted (from 0)."""
    return "1 epoch (epoch 0)" if epochs == 1 else f"{epochs} epochs (0–{epochs - 1})"


def _prediction(model: torch.nn.Sequential, sample: torch.Tensor, label: int) -> dict[str, Any]:
    layers = []
    with torch.no_grad():
        value = sample
        for layer in model:
            value = layer(value)
            layers.append({"name": _layer_name(layer), "values": _rounded(value)})
        probabilities = torch.softmax(value, dim=0)
    return {
        "input": _rounded(sample),
        "layers": layers,
        "probabilities": _rounded(probabilities),
        "predicted": int(probabilities.argmax()),
        "label": label,
    }


# --- the learning rate alone --------------------------------------------------------------------


def record_lr_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Step a scheduler `steps` times without training: the LR in force during each step.

    The optimizer steps once first (with no gradients, it changes nothing), so the scheduler
    sees the usual order and torch does not skip the schedule's first value.
    """
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=spec["lr"], momentum=0.9)
    scheduler = build_scheduler(optimizer, spec["scheduler"])
    optimizer.step()
    group = optimizer.param_groups[0]
    lrs, after = [], []
    for _ in range(spec["steps"]):
        lrs.append(float(group["lr"]))
        _step(scheduler, spec["plateau_metric"])
        after.append(float(group["lr"]))
    return {"lr": lrs, "lr_after": after}
