"""CellFateEnv: steer a progenitor to a fate, or predict its fate, under gene perturbations.

Tasks
-----
steer
    Each step the agent either perturbs one gene (knockout / overexpression; at most
    `max_perturb` per cell, time does not pass) or lets the cell advance one stage
    (`updates_per_stage` asynchronous updates). After the last stage the cell runs to
    its attractor. Reward: 1 if the attractor is the target fate, minus
    `perturbation_cost` per perturbation; optional potential-based shaping from the
    agreement with the target signature (Ng et al. 1999: it leaves optimal policies
    unchanged). Letting perturbation steps take no time means a policy can apply any
    set of up to MAX_PERTURB perturbations at time 0, as the oracle does, or time
    them across stages, which the oracle cannot.
predict
    At reset the environment applies a random set of up to `max_perturb` perturbations
    (size uniform in 0..max_perturb) at time 0, then the cell develops; at every stage
    the agent sees the cell and predicts its final fate. Reward 1/n_stages per correct
    prediction of the realized fate.

Timing
------
By default a perturbation pins its gene for the rest of the episode. With
`pulse_stages=D` every perturbation is a pulse: applied at stage s (before the cell
advances), it acts during the next D stage advances and is released when the stage
counter reaches s + D; the gene keeps its value at that moment and then follows its
rule again. Budget is not refunded, and a released gene may be perturbed again (it
costs budget again). Pulses still active when the last stage ends keep acting for
their remaining stages (each `updates_per_stage` updates, released as they run out)
before the final run to the attractor, which runs without them. The knocked-out /
overexpressed features show only the pins active now. Pulses apply to the steer task.

`background`: mutations of the cell itself (`GENE=ko`, `GENE=oe`, ...; see
`World.with_background`), fixed from time 0 and never perturbable: a rescue task.
`start` may be `attractor:FATE`, a cell that sits on an attractor of that fate
(`World.attractor_start`): a reprogramming task.

Observation: Dict(`x`: (n_genes, F) node features, `action_mask`). Node features:
state, knocked out, overexpressed, target signature on, target signature off, stage
fraction, budget left fraction, is input gene. With `observation="flat"`, `x` is the
same matrix flattened. An action the mask forbids is a no-op (the cell advances)
with a penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.errors import UserInputError, choices_error
from envs.network import KNOCKOUT, OVEREXPRESSION, PERTURBATION_KINDS, UPDATE_SCHEMES, Pins, normalize_kind, normalize_kinds, pin_value
from envs.world import World, load_world

TASKS = ("steer", "predict")
OBSERVATIONS = ("graph", "flat")
NODE_FEATURES = (
    "state",
    "knocked_out",
    "overexpressed",
    "target_on",
    "target_off",
    "stage_fraction",
    "budget_left",
    "is_input",
)
N_NODE_FEATURES = len(NODE_FEATURES)
NO_PERTURBATION = 0

DEFAULTS: dict[str, Any] = {
    "world": "myeloid",
    "task": "steer",
    "target": None,
    "max_perturb": 2,
    "kinds": PERTURBATION_KINDS,
    "n_stages": None,  # default: the world's stages, else 4
    "updates_per_stage": None,  # default: one sweep, n_genes updates
    "scheme": None,  # default: the world's update scheme
    "condition": None,  # an input condition of the world (default: the world's)
    "perturbation_cost": 0.01,
    "invalid_action_penalty": 0.1,
    "shaping": False,
    "start": None,  # a start-state name (or attractor:FATE), a list of names, or None for the default
    "pulse_stages": None,  # None: perturbations are permanent; D >= 1: released after D stages
    "background": None,  # background mutations, e.g. ["Notch1=ko"] (World.with_background)
    "observation": "graph",
    "seed": None,
}


def env_settings(config: dict | None) -> dict[str, Any]:
    """Defaults filled in and every value checked; raises UserInputError on a bad one."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS) - {"worker_index", "vector_index", "num_workers"})
    if unknown:
        raise choices_error("environment setting", unknown[0], sorted(DEFAULTS))
    s = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
    world = load_world(s["world"])
    if s["background"]:
        bg = s["background"]
        world = world.with_background(bg)
    s["world"] = world
    if s["task"] not in TASKS:
        raise choices_error("task", s["task"], TASKS)
    if s["observation"] not in OBSERVATIONS:
        raise choices_error("observation", s["observation"], OBSERVATIONS)
    s["scheme"] = s["scheme"] or world.scheme
    if s["scheme"] not in UPDATE_SCHEMES:
        raise choices_error("update scheme", s["scheme"], UPDATE_SCHEMES)
    s["condition"] = world.check_condition(s["condition"])
    s["kinds"] = normalize_kinds(s["kinds"])
    world.check_max_perturb(s["max_perturb"])
    if s["task"] == "steer":
        s["target"] = s["target"] if s["target"] is not None else world.fates[-1]
        world.fate_index(s["target"])
    s["n_stages"] = int(s["n_stages"] or len(world.stages) or 4)
    s["updates_per_stage"] = int(s["updates_per_stage"] or world.n_genes)
    if s["n_stages"] < 1 or s["updates_per_stage"] < 1:
        raise UserInputError("n_stages and updates_per_stage must be positive")
    s["start"] = world.start_names(s["start"])
    for name in s["start"]:
        world.start_state(name, s["condition"])  # an attractor start resolves per condition
    s["pulse_stages"] = check_pulse_stages(s["pulse_stages"])
    if s["pulse_stages"] is not None and s["task"] != "steer":
        raise UserInputError(f"pulse_stages applies to the steer task, not {s['task']!r}; leave it unset")
    free = world.n_genes - len(world.background_genes)
    if s["max_perturb"] > free:
        raise UserInputError(
            f"max_perturb must be at most {free} (the genes of world {world.name} not fixed by its background), "
            f"got {s['max_perturb']!r}"
        )
    return s


def check_pulse_stages(value) -> "int | None":
    """None (permanent perturbations) or a positive integer number of stages."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserInputError(f"pulse_stages must be None (permanent) or an integer >= 1, got {value!r}")
    return int(value)


def perturbable_genes(world: World) -> np.ndarray:
    """(genes,) bool: genes an action may perturb (all but the background's)."""
    fixed = set(world.background_genes)
    return np.array([g not in fixed for g in world.genes], dtype=bool)


@dataclass(frozen=True)
class EnvLayout:
    """What the settings fix before any episode, shared by the single and the batched env:
    the target, the spaces of one cell, the static node features and the shaping signature."""

    target_index: int  # -1 for predict
    n_actions: int
    action_space: gym.spaces.Discrete
    observation_space: gym.spaces.Dict
    static: np.ndarray  # (genes, N_NODE_FEATURES) with the columns that never change filled
    max_level: np.ndarray  # (genes,) float32
    care: "np.ndarray | None"  # (variables,) the target signature's bits (steer)
    care_values: "np.ndarray | None"


def env_layout(s: dict[str, Any]) -> EnvLayout:
    """The layout of an env with checked settings `s` (from `env_settings`)."""
    world: World = s["world"]
    n = world.n_genes  # user-level genes: a multi-valued gene is one node and one action
    steer = s["task"] == "steer"
    target = world.fate_index(s["target"]) if steer else -1
    n_actions = 1 + n * len(s["kinds"]) if steer else len(world.fate_labels)
    x_shape = (n, N_NODE_FEATURES) if s["observation"] == "graph" else (n * N_NODE_FEATURES,)
    observation_space = gym.spaces.Dict(
        {
            "x": gym.spaces.Box(0.0, 1.0, shape=x_shape, dtype=np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, shape=(n_actions,), dtype=np.float32),
        }
    )
    static = np.zeros((n, N_NODE_FEATURES), dtype=np.float32)
    care = care_values = None
    if steer:
        sig = world.gene_signatures[target]
        static[:, 3] = sig == 1
        static[:, 4] = sig == 0
        bits = world.signatures[target]
        care = bits != -1
        care_values = bits[care]
    inputs = set(world.inputs)
    static[:, 7] = [g in inputs for g in world.genes]
    max_level = np.array([len(v) for v in world.gene_vars], dtype=np.float32)
    return EnvLayout(target, n_actions, gym.spaces.Discrete(n_actions), observation_space, static, max_level,
                     care, care_values)


class CellFateEnv(gym.Env):
    """A progenitor cell on a Boolean GRN; see the module docstring for the tasks."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: dict | None = None):
        s = env_settings(config)
        self.settings = s
        self.world: World = s["world"]
        self.network = self.world.network
        self.condition = s["condition"]
        self.task: str = s["task"]
        self.kinds: tuple[str, ...] = s["kinds"]
        self.max_perturb: int = int(s["max_perturb"])
        self.n_stages: int = s["n_stages"]
        self.updates_per_stage: int = s["updates_per_stage"]
        self.pulse_stages: "int | None" = s["pulse_stages"]
        self.n_genes = self.world.n_genes
        self._perturbable = perturbable_genes(self.world)
        self._free_genes = np.flatnonzero(self._perturbable) if not self._perturbable.all() else None
        layout = env_layout(s)
        self.target_index = layout.target_index
        self.n_actions = layout.n_actions
        self.action_space = layout.action_space
        self.observation_space = layout.observation_space
        self._static = layout.static
        self._max_level = layout.max_level
        self._care, self._care_values = layout.care, layout.care_values
        if s["seed"] is not None:
            self.reset(seed=int(s["seed"]))

    # ---- helpers ------------------------------------------------------------------------

    def decode_action(self, action: int) -> tuple[str, str] | None:
        """(gene, kind) for a perturbation action, None for 'no perturbation'."""
        if self.task != "steer" or action == NO_PERTURBATION:
            return None
        g, k = divmod(int(action) - 1, len(self.kinds))
        return self.world.genes[g], self.kinds[k]

    def encode_action(self, gene: str, kind: str) -> int:
        return 1 + self.world.gene_index(gene) * len(self.kinds) + self.kinds.index(normalize_kind(kind))

    def _potential(self, state: np.ndarray) -> float:
        return float((state[self._care] == self._care_values).mean())

    def _advance(self, n_updates: int) -> None:
        if self.settings["scheme"] == "async":
            self.state = self.network.run_cell(self.state, n_updates, self.np_random, self.pins.mask[0])
        else:
            self.state = self.network.run(
                self.state[None, :], n_updates, self.np_random, self.pins, self.settings["scheme"]
            )[0]

    def _finish(self) -> int:
        if self.settings["scheme"] == "async":
            self.state = self.network.run_cell_to_attractor(self.state, self.np_random, self.pins.mask[0])
        else:
            self.state = self.network.run_to_attractor(
                self.state[None, :], self.np_random, self.pins, self.settings["scheme"]
            )[0]
        return int(self.world.classify(self.state[None, :])[0])

    def _mask(self) -> np.ndarray:
        mask = np.ones(self.n_actions, dtype=np.float32)
        if self.task == "steer":
            allowed = (~self.perturbed) & self._perturbable & (self.n_perturbed < self.max_perturb)
            mask[1:] = np.repeat(allowed, len(self.kinds)).astype(np.float32)
        return mask

    def _obs(self) -> dict[str, np.ndarray]:
        x = self._static.copy()
        if self.world.is_multivalued:
            x[:, 0] = self.world.gene_levels(self.state)[0] / self._max_level
        else:
            x[:, 0] = self.state
        x[:, 1] = self.perturbed_kind == 1
        x[:, 2] = self.perturbed_kind == 2
        x[:, 5] = self.stage / self.n_stages
        x[:, 6] = (self.max_perturb - self.n_perturbed) / self.max_perturb if self.task == "steer" else 0.0
        if self.settings["observation"] == "flat":
            x = x.reshape(-1)
        return {"x": x, "action_mask": self._mask()}

    # ---- gymnasium API --------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        starts = self.settings["start"]
        start = options.get("start") or starts[int(self.np_random.integers(len(starts)))]
        self.start_name = start
        self.state = self.world.start_state(start, self.condition)
        self.pins = Pins.empty(1, self.network.n_genes)
        self.perturbed = np.zeros(self.n_genes, dtype=bool)
        self.perturbed_kind = np.zeros(self.n_genes, dtype=np.int8)  # 1 knockout, 2 overexpression
        self.release = np.zeros(self.n_genes, dtype=np.int64)  # stage a pulse ends; 0: permanent
        self.stage = 0
        self.n_perturbed = 0
        self.perturbations: list[tuple[str, str, int]] = []  # (gene, kind, stage)
        self.predictions: list[int] = []
        if self.task == "predict":
            self._sample_predict_episode(options.get("perturbations"))
        return self._obs(), {"start": start}

    def _sample_predict_episode(self, given: list[tuple[str, str]] | None) -> None:
        if given is None:
            size = int(self.np_random.integers(0, self.max_perturb + 1))
            pool = self.n_genes if self._free_genes is None else self._free_genes
            genes = self.np_random.choice(pool, size=size, replace=False)
            given = [(self.world.genes[g], self.kinds[int(self.np_random.integers(len(self.kinds)))]) for g in genes]
        for gene, kind in given:
            self._apply(self.world.gene_index(gene), normalize_kind(kind))
        # The whole trajectory is drawn now so each stage's observation and the realized
        # fate come from one consistent run.
        self.stage_states = []
        for _ in range(self.n_stages):
            self.stage_states.append(self.state.copy())
            self._advance(self.updates_per_stage)
        self.realized_fate = self._finish()
        self.state = self.stage_states[0]

    def _apply(self, gene: int, kind: str) -> None:
        """Pin every bit of the gene (a multi-valued gene's knockout is one perturbation)."""
        level = self._max_level[gene] if pin_value(kind) else 0
        self.state = self.state.copy()
        for v, bit in self.world.level_bits(gene, int(level)):
            self.pins.mask[0, v] = True
            self.pins.value[0, v] = bit
            self.state[v] = bit
        self.perturbed[gene] = True
        self.perturbed_kind[gene] = 1 + pin_value(kind)
        if self.pulse_stages is not None:
            self.release[gene] = self.stage + self.pulse_stages
        self.n_perturbed += 1
        self.perturbations.append((self.world.genes[gene], kind, self.stage))

    def _release_due(self, stage: int) -> None:
        """Release the pulses that end at `stage`: the gene keeps its value, its rule resumes."""
        if self.pulse_stages is None:
            return
        for gene in np.flatnonzero(self.perturbed & (self.release == stage)).tolist():
            for v in self.world.gene_vars[gene]:
                self.pins.mask[0, v] = False
                self.pins.value[0, v] = 0
            self.perturbed[gene] = False
            self.perturbed_kind[gene] = 0
            self.release[gene] = 0

    def _play_out_pulses(self) -> None:
        """After the last stage: the pulses still active act for their remaining stages."""
        if self.pulse_stages is None:
            return
        stage = self.n_stages
        while (self.perturbed & (self.release > stage)).any():
            self._advance(self.updates_per_stage)
            stage += 1
            self._release_due(stage)

    def active_pins(self) -> dict[str, tuple[str, "int | None"]]:
        """Gene -> (kind, stage advances left; None for a permanent pin) of the pins active now."""
        out = {}
        for g in np.flatnonzero(self.perturbed).tolist():
            kind = OVEREXPRESSION if self.perturbed_kind[g] == 2 else KNOCKOUT
            out[self.world.genes[g]] = (kind, int(self.release[g] - self.stage) if self.pulse_stages else None)
        return out

    def step(self, action):
        action = int(action)
        if self.task == "predict":
            return self._step_predict(action)
        reward = 0.0
        info: dict[str, Any] = {}
        valid = 0 <= action < self.n_actions and self._mask()[action] > 0
        if not valid:
            reward -= self.settings["invalid_action_penalty"]
            info["invalid_action"] = True
        before = self._potential(self.state) if self.settings["shaping"] else 0.0
        if valid and action != NO_PERTURBATION:
            g, k = divmod(action - 1, len(self.kinds))  # decode_action, by index
            self._apply(g, self.kinds[k])
            reward -= self.settings["perturbation_cost"]
        else:
            self._advance(self.updates_per_stage)
            self.stage += 1
            self._release_due(self.stage)
        terminated = self.stage >= self.n_stages
        if terminated:
            self._play_out_pulses()
            fate = self._finish()
            success = fate == self.target_index
            reward += float(success)
            info.update(
                fate=self.world.fate_labels[fate],
                success=bool(success),
                perturbations=[(g, k) for g, k, _ in self.perturbations],
                perturbation_stages=[st for *_, st in self.perturbations],
            )
        if self.settings["shaping"]:
            after = 0.0 if terminated else self._potential(self.state)
            reward += after - before
        return self._obs(), reward, terminated, False, info

    def _step_predict(self, action: int):
        valid = 0 <= action < self.n_actions
        self.predictions.append(action if valid else -1)
        reward = (1.0 / self.n_stages) if action == self.realized_fate else 0.0
        if not valid:
            reward -= self.settings["invalid_action_penalty"]
        self.stage += 1
        terminated = self.stage >= self.n_stages
        info: dict[str, Any] = {}
        if terminated:
            labels = self.world.fate_labels
            correct = [p == self.realized_fate for p in self.predictions]
            info.update(
                fate=labels[self.realized_fate],
                predictions=[labels[p] if p >= 0 else None for p in self.predictions],
                accuracy=float(np.mean(correct)),
                perturbations=[(g, k) for g, k, _ in self.perturbations],
            )
        else:
            self.state = self.stage_states[self.stage]
        return self._obs(), reward, terminated, False, info

    def render(self):
        on = [g for g, v in zip(self.world.genes, self.world.gene_levels(self.state)[0]) if v]
        fate = self.world.fate_labels[int(self.world.classify(self.state[None, :])[0])]
        return f"stage {self.stage}/{self.n_stages} nearest={fate} on={on} perturbed={self.perturbations}"


ENV_NAME = "CellFate-v0"


def register_env() -> str:
    """Register with gymnasium: `gym.make(ENV_NAME)` gives one cell, `gym.make_vec(ENV_NAME,
    n, vectorization_mode="vector_entry_point")` the batched environment. RLlib gets the
    creator `envs.batched_env.make_cell_fate_env` directly, not a registry name."""
    if ENV_NAME not in gym.registry:
        gym.register(
            ENV_NAME,
            entry_point="envs.cell_fate_env:CellFateEnv",
            vector_entry_point="envs.batched_env:BatchedCellFateEnv",
        )
    return ENV_NAME
