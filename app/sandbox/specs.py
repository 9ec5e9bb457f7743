"""The declarative description of a training pipeline, and of a scheduler in it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_EPOCHS = 200  # playground runs train for at most this many epochs
MAX_LR_ONLY_STEPS = 1000
SchedulerParam = bool | int | float | str | list[int] | list[float] | None
# The schedulers the playground offers: the runner builds them, the web side documents them
# (here, not in training, which imports torch: the web process never does).
SCHEDULERS = (
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
)


class SpecModel(BaseModel):
    """Base for spec models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(SpecModel):
    """A synthetic classification dataset: Gaussian features, labels from a random linear
    teacher (with a little noise), so the task is learnable but not trivial."""

    rows: int = Field(ge=10, le=100_000, description="Number of samples.")
    features: int = Field(ge=1, le=256, description="Features per sample.")
    classes: int = Field(ge=2, le=20, description="Number of classes.")
    noise: float = Field(default=0.5, ge=0, le=10, description="Label noise (std of logits).")
    seed: int = Field(default=0, ge=0, description="Seed of the data generator.")


class SplitSpec(SpecModel):
    """How the shuffled rows are split into training and test sets."""

    train: int = Field(ge=1, description="Rows used for training (the first ones).")
    test: int = Field(ge=1, description="Rows held out for testing (the next ones).")


class LinearLayer(SpecModel):
    """A fully connected layer."""

    type: Literal["linear"] = Field(description="`linear`: torch.nn.Linear(inputs, outputs).")
    inputs: int = Field(ge=1, le=1024, description="Input features.")
    outputs: int = Field(ge=1, le=1024, description="Output features.")


class ReluLayer(SpecModel):
    """An activation layer."""

    type: Literal["relu"] = Field(description="`relu`: torch.nn.ReLU().")


Layer = Annotated[LinearLayer | ReluLayer, Field(discriminator="type")]


class OptimizerSpec(SpecModel):
    """The optimizer and its learning rate."""

    name: Literal["SGD", "Adam"] = Field(description="torch.optim class name.")
    lr: float = Field(gt=0, le=10, description="Initial learning rate.")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD momentum.")


class SchedulerSpec(SpecModel):
    """A scheduler of torch.optim.lr_scheduler, stepped once per epoch (after the epoch's
    optimizer steps; ReduceLROnPlateau with the epoch's test loss)."""

    name: str = Field(description="Class name in torch.optim.lr_scheduler, e.g. `StepLR`.")
    params: dict[str, SchedulerParam] = Field(
        default_factory=dict, description="Keyword arguments (not the optimizer)."
    )
    schedulers: list[SchedulerSpec] = Field(
        default_factory=list,
        description="For `SequentialLR`: the schedulers it runs one after another.",
    )

    @model_validator(mode="after")
    def _sequential_has_children(self) -> SchedulerSpec:
        if self.name == "SequentialLR" and len(self.schedulers) < 2:
            raise ValueError("SequentialLR needs at least two `schedulers`")
        if self.name != "SequentialLR" and self.schedulers:
            raise ValueError("only SequentialLR takes `schedulers`")
        return self


class PipelineSpec(SpecModel):
    """A complete, deterministic training run: same spec, same trace, bit for bit."""

    dataset: DatasetSpec = Field(description="The synthetic dataset.")
    split: SplitSpec = Field(description="Train/test split.")
    model: list[Layer] = Field(min_length=1, description="Layers, in order.")
    output: Literal["softmax"] = Field(
        default="softmax", description="How the last layer's outputs read as probabilities."
    )
    loss: Literal["cross_entropy"] = Field(default="cross_entropy", description="Training loss.")
    optimizer: OptimizerSpec = Field(description="Optimizer and initial learning rate.")
    scheduler: SchedulerSpec = Field(description="The LR scheduler.")
    epochs: int = Field(ge=1, le=MAX_EPOCHS, description="Training epochs.")
    batch_size: int = Field(ge=1, le=10_000, description="Samples per optimizer step.")
    seed: int = Field(default=0, ge=0, description="Seed of weights and shuffling.")

    @model_validator(mode="after")
    def _shapes_fit(self) -> PipelineSpec:
        if self.split.train + self.split.test > self.dataset.rows:
            raise ValueError("split.train + split.test is more than dataset.rows")
        linears = [layer for layer in self.model if isinstance(layer, LinearLayer)]
        if not linears:
            raise ValueError("the model needs at least one linear layer")
        width = self.dataset.features
        for index, layer in enumerate(linears):
            if layer.inputs != width:
                raise ValueError(
                    f"linear layer {index + 1} takes {layer.inputs} inputs but receives {width}"
                )
            width = layer.outputs
        if width != self.dataset.classes:
            raise ValueError(
                f"the last linear layer gives {width} outputs, not "
                f"{self.dataset.classes} (one per class)"
            )
        return self


class LrOnlySpec(SpecModel):
    """Step a scheduler without training, for an instant learning-rate curve."""

    lr: float = Field(gt=0, le=10, description="Initial learning rate.")
    scheduler: SchedulerSpec = Field(description="The scheduler.")
    steps: int = Field(ge=1, le=MAX_LR_ONLY_STEPS, description="scheduler.step() calls.")
    plateau_metric: float = Field(
        default=1.0, description="What ReduceLROnPlateau is fed each step (a flat loss)."
    )
