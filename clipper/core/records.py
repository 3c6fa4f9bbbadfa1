"""Records held by the registry: plain frozen values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper.core.payload_config import PayloadLogConfig
from clipper.core.resources import ResourceRequest
from clipper.core.types import InputType, ModelId

__all__ = [
    "OVERLOAD_MODES",
    "PRIORITIES",
    "AppRecord",
    "ModelVersionRecord",
    "RegistrySnapshot",
    "RolloutRecord",
]

OVERLOAD_MODES = ("default", "reject")
"""What an app's queries refused by admission control get (see `AppRecord.overload`)."""

PRIORITIES = range(10)
"""The priority classes of apps and queries: 0 (the default, lowest) to 9 (highest)."""


@dataclass(frozen=True, slots=True)
class AppRecord:
    """A registered application.

    `policy` and `policy_params` choose how its linked models answer (clipper.selection);
    a non-empty `pipeline` names models that answer in turn, each one's output the next
    one's input, instead. `show_model_errors` lets its clients read a model's exception
    text in a default answer (for development); otherwise they get the exception's type and
    a reference into the server log, which holds the text. `overload` is what a query
    refused by admission control gets (`OVERLOAD_MODES`): the default output (`default`,
    Clipper's way) or an error (`reject`: 429 with Retry-After, gRPC RESOURCE_EXHAUSTED).
    `payload_log` is where a record of its queries goes (clipper.payloads), or None.
    `priority` is its class (`PRIORITIES`, higher first): under contention its queries are
    served before, and shed after, those of lower classes; a query may lower its own.
    """

    name: str
    input_type: InputType
    default_output: str
    latency_slo_us: int
    policy: str = "single"
    cache_enabled: bool = True
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    pipeline: tuple[str, ...] = ()
    show_model_errors: bool = False
    overload: str = "default"
    payload_log: PayloadLogConfig | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    """A registered version of a model.

    `num_replicas` is the target the reconciler keeps running; containerless versions are
    served by external workers and never get replicas. `batch_size` -1 is adaptive (AIMD),
    a positive value a fixed maximum; `batch_wait_timeout_us` lets a batch fill under light
    load; `max_in_flight` is how many batches one replica may hold at once. `signature` is
    the Open Inference Protocol signature declared at deploy time (JSON text, see
    clipper.frontend.oip.signature), or None. `output_type` is the declared type of its
    outputs as another model's input (for pipelines), or None. `resources` is what each
    replica asks of the node it runs on (honoured by the Ray placement). `max_queued`
    bounds its batch queue (0: derived from what its replicas can finish within the longest
    SLO of the apps using it). `payload_log` is where a record of each query it answered goes
    (clipper.payloads; whichever app asked, or none), or None. `task` is what a generative
    version does (clipper.core.generation.TASKS), which the OpenAI-compatible API serves;
    None: not one.
    """

    name: str
    version: str
    input_type: InputType
    labels: tuple[str, ...] = ()
    container_name: str = ""
    model_data_path: str = ""
    batch_size: int = -1
    num_replicas: int = 0
    containerless: bool = False
    created_at: float = 0.0
    batch_wait_timeout_us: int = 0
    max_in_flight: int = 1
    cache_enabled: bool = True
    signature: str | None = None
    output_type: InputType | None = None
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    max_queued: int = 0
    payload_log: PayloadLogConfig | None = None
    task: str | None = None

    @property
    def model_id(self) -> ModelId:
        """This version's id."""
        return ModelId(self.name, self.version)


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Everything the dataplane and reconciler need, read in one transaction."""

    apps: dict[str, AppRecord] = field(default_factory=dict)
    versions: dict[ModelId, ModelVersionRecord] = field(default_factory=dict)
    current_versions: dict[str, str] = field(default_factory=dict)
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policy_states: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """A canary rollout of `model:version` against `baseline` (the version current when it
    started). `plan` is its canonical JSON form (clipper.control.rollout_plan); `step`
    indexes its steps; `state` is `running`, `promoted`, `rolled_back` or `aborted`, and
    `reason` says why it ended. Times are wall-clock seconds; `step_started_at` is when
    the step began (again, with fresh windows, after a restart); `paused_at` when an
    operator paused it (None: not paused; a paused rollout is still `running`)."""

    rollout_id: int
    model: str
    version: str
    baseline: str
    plan: Mapping[str, Any]
    step: int
    state: str
    reason: str
    started_at: float
    step_started_at: float
    ended_at: float | None = None
    paused_at: float | None = None
