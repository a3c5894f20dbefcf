"""LoRA_staged (the seed's "Algorithm 3"): fine-tune a pretrained policy through low-rank adapters.

A wrapped linear layer computes ``y = W x + b + s * B (A x)`` with ``s = alpha / r``,
A (r x in) and B (out x r); B starts at zero so wrapping leaves the policy's output
unchanged. Every linear layer of the module is wrapped by default, including the
linear maps inside the GNN's graph convolutions (GCNConv / GATConv / SAGEConv and
their dense forms keep theirs in ``lin*`` submodules); parameters outside linear
layers (conv biases, GAT attention vectors) stay frozen in the adapter stages.

Definitions used here (the seed names the stages without defining them):

- **Convex LoRA** (LoRA-FA, Zhang et al. 2023): A is random and frozen, only B is
  trained. The adapted layer is linear in its trained parameters, ``y = W x + b +
  s B z`` with fixed random features ``z = A x``, so for a convex loss of the
  layer's output the problem in B is convex. (The RL objective through a deep
  network is still not convex: the name describes the adapter's parametrisation.)
- **Non-convex LoRA** (Hu et al. 2021): A and B are both trained. The layer is
  bilinear in (A, B); even for a convex loss of its output the problem is not
  convex (e.g. ``B A = (B Q)(Q^-1 A)`` for any invertible Q).
- **Blend** (``convex_mode: blend``, the seed author's convex stage, as read from
  their notebook; not verified here against the code): the layer computes
  ``y = ((1 - c) W + c * alpha * B A) x + b``, a convex combination of the base
  weight and the (alpha-scaled, not alpha / r) low-rank product, with W, b, A
  and B all trained. ``c`` is ``blend_c``. Wrapping changes the output (W is
  shrunk by 1 - c while B = 0); since B starts at 0, A's first gradient is 0.
  The next stage starts from the merged ``(1 - c) W + c alpha B A`` with fresh
  adapters.
- **Full fine-tuning** (optional last stage): every adapter is merged,
  ``W <- W + s B A``, and all weights are trained.

Stages, in order, each a share of the trial's budget and each trained by
``algorithm`` (PPO by default; A2C or TRPO)::

    pretrain        only without ``pretrained``: the plain module, from scratch, same env
    lora_convex     B trained (convex_mode frozen_a), or W, A, B of the blend (convex_mode blend)
    lora_nonconvex  A and B trained (continuing from the convex stage's A, B)
    full            merged weights, all trained

Settings: :class:`LoRASettings`.

A pretrained GNN may come from another world, target or MAX_PERTURB: its weights
do not depend on the network's size. An MLP's input layer does, so it only
transfers between worlds with the same genes.

Each stage's optimizer holds exactly the parameters that stage trains
(``requires_grad``); the rest do not change.

Over 300 lines on purpose: the adapter, the conversion between plain and adapted
weights, and the stages are one algorithm, read top to bottom in one file.
"""

from __future__ import annotations

import fnmatch
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from torch import nn

from envs.errors import UserInputError, choices_error

from algorithms import a2c, ppo, trpo
from algorithms.common import Stage, as_array, learner_module, saved_stage_dir
from algorithms.modules import GNNModule, MLPModule
from algorithms.settings import CommonSettings

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

    from algorithms.trial_plan import TrialPlan

MODES = ("convex", "blend", "nonconvex", "full")
CONVEX_MODES = ("frozen_a", "blend")
ADAPTER_KEYS = ("lora_A", "lora_B", "lora_scale", "lora_blend")
STAGE_NAMES = ("pretrain", "lora_convex", "lora_nonconvex", "full")
STAGE_MODE = {"lora_convex": "convex", "lora_nonconvex": "nonconvex", "full": "full"}


@dataclass(frozen=True, kw_only=True)
class LoRASettings(CommonSettings):
    """LoRA_staged's ``algo_hparams`` (all optional): LoRA (Hu et al. 2021, "LoRA: Low-Rank
    Adaptation of Large Language Models"), its convex stage LoRA-FA (Zhang et al. 2023).

    pretrained: a TrialRunner.save() dir, an RLlib algorithm checkpoint, or a
        module_state.pkl; absolute, readable wherever the trial runs. Without it a
        ``pretrain`` stage trains the plain module from scratch on the same env.
    stages: stage name -> budget share; a stage with share 0 or left out does not
        run. Default: DEFAULT_SHARES, or DEFAULT_SHARES_PRETRAINED with ``pretrained``.
    rank, alpha: the adapters' rank r and scale s = alpha / r (the blend scales by alpha).
    layers: fnmatch patterns over module paths, e.g. ["pi_*"] for the actor only.
    algorithm: the RL algorithm of every stage: PPO | A2C | TRPO.
    convex_mode: what lora_convex trains: frozen_a (LoRA-FA: B only, A frozen random)
        or blend (the seed author's ``(1 - c) W + c alpha B A``, W, A and B trained).
    blend_c: c of the blend, in [0, 1] (only with convex_mode blend).
    PPO, A2C, TRPO: that algorithm's own algo_hparams (its settings class's keys).
    """

    NAME: ClassVar[str] = "LoRA_staged"
    DEFAULT_SHARES: ClassVar[Mapping[str, float]] = {"pretrain": 0.5, "lora_convex": 0.25, "lora_nonconvex": 0.25, "full": 0.0}
    DEFAULT_SHARES_PRETRAINED: ClassVar[Mapping[str, float]] = {"lora_convex": 0.5, "lora_nonconvex": 0.5, "full": 0.0}

    pretrained: str | None = None
    stages: Mapping[str, float] | None = None
    rank: int = 4
    alpha: float = 4.0
    layers: Sequence[str] | str = ("*",)
    algorithm: str = "PPO"
    convex_mode: str = "frozen_a"
    blend_c: float = 0.5
    PPO: Mapping[str, Any] | None = field(default_factory=dict)
    A2C: Mapping[str, Any] | None = field(default_factory=dict)
    TRPO: Mapping[str, Any] | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algorithm not in BASE_ALGORITHMS:
            raise choices_error("LoRA_staged algorithm", self.algorithm, tuple(BASE_ALGORITHMS))
        if self.convex_mode not in CONVEX_MODES:
            raise choices_error("LoRA_staged convex_mode", self.convex_mode, CONVEX_MODES)
        if not 0.0 <= self.blend_c <= 1.0:
            raise UserInputError(f"LoRA_staged blend_c must be in [0, 1], got {self.blend_c!r}")


# ---- the adapter ----------------------------------------------------------------------------


def is_linear(layer: nn.Module) -> bool:
    """torch's nn.Linear or torch_geometric's Linear (both compute x W^T + b from `weight`)."""
    if isinstance(layer, nn.Linear):
        return True
    try:
        from torch_geometric.nn.dense.linear import Linear as PygLinear
    except ImportError:  # pragma: no cover - torch_geometric is a dependency
        return False
    return isinstance(layer, PygLinear) and isinstance(layer.weight, nn.Parameter) and layer.weight.dim() == 2


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * B (A x)``; A ~ Kaiming-uniform (seeded), B = 0.

    With ``blend=c``: ``base(x) - c W x + c * alpha * B (A x)``, i.e. the author's
    ``((1 - c) W + c alpha B A) x + b`` (``lora_scale`` is then alpha itself).
    """

    def __init__(self, base: nn.Module, rank: int, alpha: float, generator: torch.Generator, blend: float | None = None):
        super().__init__()
        out_features, in_features = base.weight.shape
        self.base = base
        self.rank = int(rank)
        bound = 1.0 / math.sqrt(in_features)  # Kaiming-uniform with a=sqrt(5), as nn.Linear and PEFT
        a = (torch.rand(self.rank, in_features, generator=generator) * 2 - 1) * bound
        self.lora_A = nn.Parameter(a.to(base.weight.device, base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(out_features, self.rank, device=base.weight.device, dtype=base.weight.dtype))
        # Stored so that a checkpoint alone is enough to merge the adapter.
        scale = float(alpha) if blend is not None else float(alpha) / self.rank
        self.register_buffer("lora_scale", torch.tensor(scale))
        self.blend = blend
        if blend is not None:
            # Its presence in a state dict is what tells plain_state to merge as a blend.
            self.register_buffer("lora_blend", torch.tensor(float(blend)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = self.lora_scale * nn.functional.linear(nn.functional.linear(x, self.lora_A), self.lora_B)
        if self.blend is None:
            return self.base(x) + low_rank
        # Through base(x) so the base layer's own forward (bias, PyG Linear) is kept.
        return self.base(x) + self.lora_blend * (low_rank - nn.functional.linear(x, self.base.weight))

    def reset_parameters(self) -> None:
        # PyG convs call lin.reset_parameters(); the adapter keeps B = 0.
        self.base.reset_parameters()
        nn.init.zeros_(self.lora_B)

    @property
    def weight(self) -> torch.Tensor:
        """The weight forward applies (differentiable in the adapters), so code that reads a
        linear layer's weight and bias, such as the GNN heads' split first layer, sees the
        adapted layer."""
        return self.merged_weight()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def merged_weight(self) -> torch.Tensor:
        if self.blend is None:
            return self.base.weight + self.lora_scale * self.lora_B @ self.lora_A
        return (1 - self.lora_blend) * self.base.weight + self.lora_blend * self.lora_scale * self.lora_B @ self.lora_A


def wrap_linear_layers(
    module: nn.Module, rank: int, alpha: float, patterns: list[str] | tuple[str, ...] = ("*",), seed: int = 0,
    blend: float | None = None,
) -> list[str]:
    """Replace every linear layer whose path matches one of `patterns` by a LoRALinear
    (a blend with c = `blend` if given); returns the wrapped paths in module order."""
    if rank < 1:
        raise UserInputError(f"LoRA rank must be a positive integer, got {rank!r}")
    generator = torch.Generator().manual_seed(int(seed))
    targets = [
        (name, layer)
        for name, layer in module.named_modules()
        if name and is_linear(layer) and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    ]
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, LoRALinear(layer, rank, alpha, generator, blend))
    return [name for name, _ in targets]


def set_trainable(module: nn.Module, mode: str) -> None:
    """convex: only lora_B; blend and nonconvex: lora_A and lora_B, blend also the
    wrapped layers' own weight and bias; full: everything."""
    if mode not in MODES:
        raise choices_error("LoRA mode", mode, MODES)
    for name, param in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        param.requires_grad_(mode == "full" or leaf == "lora_B" or (mode in ("nonconvex", "blend") and leaf == "lora_A"))
    if mode == "blend":
        for layer in module.modules():
            if isinstance(layer, LoRALinear):
                layer.base.requires_grad_(True)


# ---- plain <-> adapted state dicts ------------------------------------------------------------


def plain_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A module state with every adapter merged into its base weight, under plain keys."""
    state = {k: as_array(v) for k, v in state.items()}
    out: dict[str, np.ndarray] = {}
    adapters = {k[: -len(".lora_A")] for k in state if k.endswith(".lora_A")}
    for key, value in state.items():
        path = next((p for p in adapters if key.startswith(p + ".")), None)
        if path is None:
            out[key] = value
            continue
        rest = key[len(path) + 1 :]
        if rest == "base.weight":
            scale = float(state[f"{path}.lora_scale"])
            low_rank = scale * state[f"{path}.lora_B"] @ state[f"{path}.lora_A"]
            if f"{path}.lora_blend" in state:
                c = float(state[f"{path}.lora_blend"])
                out[f"{path}.weight"] = (1 - c) * value + c * low_rank
            else:
                out[f"{path}.weight"] = value + low_rank
        elif rest.startswith("base."):
            out[f"{path}.{rest[len('base.'):]}"] = value
    return out


def adapted_key(key: str, wrapped: list[str]) -> str:
    """Where plain `key` lives in a module whose `wrapped` layer paths carry adapters."""
    for path in wrapped:
        if key.startswith(path + "."):
            return f"{path}.base.{key[len(path) + 1:]}"
    return key


def _non_inference_prefixes(module: nn.Module) -> tuple[str, ...]:
    """Key prefixes an inference-only module (an env runner's) leaves out, e.g. the critic."""
    if not getattr(module, "inference_only", False) or not hasattr(module, "get_non_inference_attributes"):
        return ()
    return tuple(f"{name}." for name in module.get_non_inference_attributes())


def load_plain_state(module: nn.Module, state: dict[str, Any], wrapped: list[str] | None = None) -> None:
    """Load a plain (adapter-free) state into `module`, whose adapters keep their values.

    Every parameter of `module` except the adapters must receive a value, and every
    key of `state` must find a place of the same shape (an inference-only module
    skips the parts it does not hold): RLlib's set_state would ignore a mismatch
    silently.
    """
    wrapped = list(wrapped or [])
    own = module.state_dict()
    skipped = _non_inference_prefixes(module)
    mapped = {adapted_key(k, wrapped): v for k, v in state.items() if not (skipped and k.startswith(skipped))}
    unknown = sorted(set(mapped) - set(own))
    missing = sorted(
        k for k in own if k not in mapped and k.rsplit(".", 1)[-1] not in ADAPTER_KEYS and not (skipped and k.startswith(skipped))
    )
    wrong = sorted(k for k in set(mapped) & set(own) if tuple(np.shape(mapped[k])) != tuple(own[k].shape))
    if unknown or missing or wrong:
        raise ValueError(
            f"pretrained weights do not fit this module: unknown {unknown[:4]}, missing {missing[:4]}, other shape {wrong[:4]} "
            "(an MLP only transfers between worlds with the same genes)"
        )
    new = {k: (torch.as_tensor(mapped[k], dtype=v.dtype) if k in mapped else v) for k, v in own.items()}
    module.load_state_dict(new, strict=True)


def read_pretrained(path: str) -> dict[str, np.ndarray]:
    """Plain module state from a TrialRunner.save() directory, an RLlib algorithm
    checkpoint, an RLModule checkpoint directory or a module_state.pkl file."""
    if not os.path.exists(path):
        raise UserInputError(f"pretrained checkpoint {path!r} does not exist")
    path = saved_stage_dir(path) or path
    candidates = [
        path,
        os.path.join(path, "module_state.pkl"),
        os.path.join(path, DEFAULT_MODULE_ID, "module_state.pkl"),
        os.path.join(path, "learner_group", "learner", "rl_module", DEFAULT_MODULE_ID, "module_state.pkl"),
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            with open(candidate, "rb") as fh:
                return plain_state(pickle.load(fh))
    raise UserInputError(f"no module weights found under {path!r} (expected a trial or RLlib checkpoint)")


# ---- modules and learners ----------------------------------------------------------------------


class LoRAModuleMixin:
    """Builds the base module, loads pretrained weights, wraps layers and freezes per stage.

    ``model_config["lora"]``: mode (convex | blend | nonconvex | full), rank, alpha, layers,
    seed, blend_c (mode blend), and pretrained (a path; only the first fine-tuning stage
    of a trial loads it).
    """

    def setup(self) -> None:
        super().setup()
        cfg = self.model_config["lora"]
        self.lora_mode = cfg["mode"]
        if cfg.get("pretrained"):
            load_plain_state(self, read_pretrained(cfg["pretrained"]))
        self.lora_paths: list[str] = []
        if self.lora_mode != "full":
            blend = cfg["blend_c"] if self.lora_mode == "blend" else None
            self.lora_paths = wrap_linear_layers(self, cfg["rank"], cfg["alpha"], cfg["layers"], cfg["seed"], blend)
            if not self.lora_paths:
                raise UserInputError(f"LoRA layers {cfg['layers']} match no linear layer of the module")
        set_trainable(self, self.lora_mode)


class LoRAGNNModule(LoRAModuleMixin, GNNModule):
    """GNNModule with low-rank adapters (see algorithms.lora)."""


class LoRAMLPModule(LoRAModuleMixin, MLPModule):
    """MLPModule with low-rank adapters (see algorithms.lora)."""


LORA_MODULES = {GNNModule: LoRAGNNModule, MLPModule: LoRAMLPModule}


class TrainableOnlyMixin:
    """Registers only ``requires_grad`` parameters with the plumbed optimizers."""

    def optimizer_groups(self, module_id: str, config: Any) -> dict[str, list[nn.Parameter]]:
        groups = super().optimizer_groups(module_id, config)
        return {name: [p for p in params if p.requires_grad] for name, params in groups.items()}


class LoRAPPOLearner(TrainableOnlyMixin, ppo.PPOTorchLearner):
    """PPO learner of the LoRA stages."""


class LoRAA2CLearner(TrainableOnlyMixin, a2c.A2CTorchLearner):
    """A2C learner of the LoRA stages."""


class LoRATRPOLearner(TrainableOnlyMixin, trpo.TRPOTorchLearner):
    """TRPO learner of the LoRA stages (its actor step already skips frozen parameters)."""


# The algorithms a LoRA stage may run: name -> (settings class, config builder, LoRA learner).
BASE_ALGORITHMS: dict[str, tuple[type[CommonSettings], Any, type]] = {
    "PPO": (ppo.PPOSettings, ppo.algorithm_config, LoRAPPOLearner),
    "A2C": (a2c.A2CSettings, a2c.algorithm_config, LoRAA2CLearner),
    "TRPO": (trpo.TRPOSettings, trpo.algorithm_config, LoRATRPOLearner),
}


# ---- stage hand-over --------------------------------------------------------------------------


def lora_transfer(source: "Algorithm", target: "Algorithm") -> list[str]:
    """Carry weights into the next stage: adapters as they are between two adapter stages,
    otherwise merged into plain weights (and into the base of freshly wrapped layers).
    Checks that every key landed; returns the target keys that were set."""
    src_module, dst_module = learner_module(source), learner_module(target)
    src = {k: as_array(v) for k, v in src_module.state_dict().items()}
    if set(src) == set(dst_module.state_dict()) and getattr(src_module, "lora_paths", []):
        dst_module.load_state_dict({k: torch.as_tensor(v) for k, v in src.items()}, strict=True)
        expected = src
    else:
        plain = plain_state(src)
        wrapped = list(getattr(dst_module, "lora_paths", []))
        load_plain_state(dst_module, plain, wrapped)
        expected = {adapted_key(k, wrapped): v for k, v in plain.items()}
    landed = {k: as_array(v) for k, v in dst_module.state_dict().items()}
    wrong = [k for k, v in expected.items() if not np.allclose(landed[k], v, rtol=1e-6, atol=1e-7)]
    if wrong:
        raise ValueError(f"weights did not arrive in the next stage: {wrong[:5]}")
    target.env_runner_group.sync_weights(from_worker_or_learner_group=target.learner_group, inference_only=True)
    return sorted(expected)


# ---- stages -----------------------------------------------------------------------------------


def _shares(given: Mapping[str, float] | None, pretrained: bool) -> list[tuple[str, float]]:
    shares = dict(LoRASettings.DEFAULT_SHARES_PRETRAINED if pretrained else LoRASettings.DEFAULT_SHARES)
    if given is not None:
        if not isinstance(given, Mapping):
            raise UserInputError(f"LoRA_staged 'stages' must map stage names to budget shares, got {given!r}")
        for name in given:
            if name not in STAGE_NAMES:
                raise choices_error("LoRA_staged stage", name, STAGE_NAMES)
        shares = {name: float(given.get(name, 0.0)) for name in STAGE_NAMES}
    if pretrained and shares.get("pretrain", 0.0) > 0:
        raise UserInputError("LoRA_staged: a 'pretrain' stage and a 'pretrained' checkpoint exclude each other")
    if not pretrained and shares.get("pretrain", 0.0) <= 0:
        raise UserInputError("LoRA_staged needs algo_hparams 'pretrained' (a checkpoint) or a 'pretrain' stage share")
    if any(v < 0 for v in shares.values()):
        raise UserInputError(f"LoRA_staged stage shares must be >= 0, got {shares}")
    plan = [(name, shares[name]) for name in STAGE_NAMES if shares.get(name, 0.0) > 0]
    if len(plan) < (2 if not pretrained else 1):
        raise UserInputError("LoRA_staged needs at least one fine-tuning stage after pretraining")
    return plan


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """The trial's stages (see the module docstring)."""
    h = LoRASettings.from_dict(hparams, task=trial.task)
    pretrained = os.path.abspath(h.pretrained) if h.pretrained else None
    if pretrained is not None:
        read_pretrained(pretrained)  # fail now, in the driver, on a bad path
    layers = [h.layers] if isinstance(h.layers, str) else list(h.layers)
    settings_class, algorithm_config, lora_learner = BASE_ALGORITHMS[h.algorithm]
    own = {**h.common(), **(getattr(h, h.algorithm) or {})}
    stages: list[Stage] = []
    for i, (name, share) in enumerate(_shares(h.stages, pretrained is not None)):
        config = algorithm_config(trial, settings_class.from_dict(own, task=trial.task))
        if name != "pretrain":
            spec = config.rl_module_spec
            mode = STAGE_MODE[name]
            if mode == "convex" and h.convex_mode == "blend":
                mode = "blend"
            lora = {
                "mode": mode,
                "rank": h.rank,
                "alpha": h.alpha,
                "layers": layers,
                "seed": int(trial.seed),
                **({"blend_c": h.blend_c} if mode == "blend" else {}),
                # Only the first stage starts from the checkpoint; later ones from the previous stage.
                "pretrained": pretrained if i == 0 else None,
            }
            config.rl_module(
                rl_module_spec=RLModuleSpec(
                    module_class=LORA_MODULES[spec.module_class], model_config={**spec.model_config, "lora": lora}
                )
            )
            config.learners(learner_class=lora_learner)
        stages.append(Stage(name, config, share, transfer=lora_transfer if i > 0 else None))
    return stages
