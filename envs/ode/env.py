"""OdeCellFateEnv: steer, predict or move a cell whose expression follows stochastic ODEs.

The Boolean environment's tasks (`envs.cell_fate_env`) on an ODE world (`envs.ode.world`),
with the same observation layout (`env_layout`: per-gene node features and an action mask),
the same markers for fates and the same rewards, plus the seed's trajectory task.

Actions
-------
`action: discrete` (as the Boolean env): 0 lets the cell develop one stage (`stage_time`
time units); 1 + g * len(kinds) + k applies perturbation kind k (knockout / overexpression)
to gene g, permanently, taking no time; at most `max_perturb` genes. `action: continuous`:
a Box(-1, 1, (genes,)) of gene weights (`envs.ode.perturb`: w < 0 knock-down by -w, w > 0
activation by w); each step the weights replace the current perturbation and the cell
develops one stage. Only the `max_perturb` largest |w| act (the others and background genes
are set to 0); a step costs `perturbation_cost * sum |w|`.

Tasks
-----
steer: after the last stage the cell runs `settle_time` more (perturbations still acting)
and its fate is read from its binarized expression by the world's markers; reward 1 for the
target fate. predict: at reset up to `max_perturb` random knockouts / overexpressions, then at
every stage the agent predicts the final fate (reward 1/n_stages per correct prediction).
trajectory: the target is a later cell's profile: by default a cell simulated from the same
start for n_stages * stage_time under a hidden random perturbation set (up to max_perturb
knockouts / overexpressions; another noise stream), or a profile given in
`reset(options={"target_profile": ...})` (from data, genes in world order, mRNA units).
Each stage the reward is the decrease of the RMS distance between the cell's profile and the
target (both divided by each gene's on level); the episode's end reports the seed's metrics
(`envs.ode.metrics`).

Observation node features: expression / on level (clipped to [0, 1]), knock-down fraction,
activation fraction, target on, target off (steer: the fate's signature; trajectory: the
target profile binarized), stage fraction, budget left, is input gene. The mask of the
continuous env marks the genes a weight may act on. `observation: vector` gives the flat
features alone (a Box), for modules that read no mask.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.cell_fate_env import NO_PERTURBATION, env_layout, perturbable_genes
from envs.cell_fate_env import OBSERVATIONS as BOOLEAN_OBSERVATIONS
from envs.errors import UserInputError, choices_error
from envs.network import KNOCKOUT, PERTURBATION_KINDS, normalize_kinds
from envs.ode.metrics import trajectory_metrics
from envs.ode.params import ode_params
from envs.ode.world import OdeWorld, ode_world
from envs.world import World, load_world

TASKS = ("steer", "predict", "trajectory")
ACTIONS = ("discrete", "continuous")
# graph / flat as CellFateEnv; vector: the flat node features alone, a Box without the mask
# (for RLlib's default modules, which read a Box; the continuous env's mask never changes)
OBSERVATIONS = BOOLEAN_OBSERVATIONS + ("vector",)

DEFAULTS: dict[str, Any] = {
    "world": "myeloid",
    "task": "steer",
    "action": "discrete",
    "target": None,
    "max_perturb": 2,
    "kinds": PERTURBATION_KINDS,
    "n_stages": None,  # default: the world's stages, else 4
    "stage_time": 1.0,  # ODE time units per stage (the mRNA decay time is 1 / l_x = 0.1)
    "settle_time": 5.0,  # time run after the last stage before the fate is read (steer, predict)
    "ode": None,  # OdeParams overrides, e.g. {"proteins": True, "noise_scale": 0.1}
    "condition": None,
    "start": None,
    "background": None,
    "perturbation_cost": 0.01,
    "invalid_action_penalty": 0.1,
    "observation": "graph",
    "seed": None,
}


def ode_env_settings(config: dict | None) -> dict[str, Any]:
    """Defaults filled in and every value checked; raises UserInputError on a bad one."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS) - {"worker_index", "vector_index", "num_workers"})
    if unknown:
        raise choices_error("ODE environment setting", unknown[0], sorted(DEFAULTS))
    s = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
    world = s["world"].world if isinstance(s["world"], OdeWorld) else load_world(s["world"])
    if s["background"]:
        bg = s["background"]
        world = world.with_background(bg)
    s["world"] = world
    for key, valid in (("task", TASKS), ("action", ACTIONS), ("observation", OBSERVATIONS)):
        if s[key] not in valid:
            raise choices_error(key, s[key], valid)
    if s["task"] == "predict" and s["action"] == "continuous":
        raise UserInputError("the predict task's action is a fate (discrete); use action: discrete")
    s["ode"] = ode_params(s["ode"])
    s["condition"] = world.check_condition(s["condition"])
    s["kinds"] = normalize_kinds(s["kinds"])
    world.check_max_perturb(s["max_perturb"])
    if s["task"] == "steer":
        s["target"] = s["target"] if s["target"] is not None else world.fates[-1]
        world.fate_index(s["target"])
    s["n_stages"] = int(s["n_stages"] or len(world.stages) or 4)
    if s["n_stages"] < 1:
        raise UserInputError(f"n_stages must be >= 1, got {s['n_stages']!r}")
    for key in ("stage_time", "settle_time"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0 or (key == "stage_time" and v == 0):
            raise UserInputError(f"{key} must be a positive number of ODE time units, got {v!r}")
    s["start"] = world.start_names(s["start"])
    return s


class OdeCellFateEnv(gym.Env):
    """One cell on an ODE world; see the module docstring."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: dict | None = None):
        s = ode_env_settings(config)
        self.settings = s
        world: World = s["world"]
        given = (config or {}).get("world")
        if isinstance(given, OdeWorld) and given.world is world and given.params == s["ode"]:
            self.ode = given
        else:
            self.ode = ode_world(world, s["ode"])
        self.world = world
        self.task: str = s["task"]
        self.continuous = s["action"] == "continuous"
        self.kinds = s["kinds"]
        self.max_perturb = int(s["max_perturb"])
        self.n_stages = s["n_stages"]
        self.n_genes = world.n_genes
        self._perturbable = perturbable_genes(world)
        self.vector = s["observation"] == "vector"
        layout = env_layout({"world": world, "task": "predict" if self.task == "predict" else "steer",
                             "target": s["target"] if self.task == "steer" else world.fates[0],
                             "kinds": self.kinds, "observation": "flat" if self.vector else s["observation"]})
        self.target_index = layout.target_index if self.task == "steer" else -1
        self._static = layout.static.copy()
        if self.task == "trajectory":
            self._static[:, 3:5] = 0.0  # set per episode from the target profile
        self._scale = self.ode.gene_scale()
        self.observation_space = layout.observation_space
        if self.continuous:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.n_genes,), dtype=np.float32)
            x_space = layout.observation_space["x"]
            self.observation_space = gym.spaces.Dict({
                "x": x_space, "action_mask": gym.spaces.Box(0.0, 1.0, shape=(self.n_genes,), dtype=np.float32)})
        else:
            self.action_space = layout.action_space
        if self.vector:
            self.observation_space = self.observation_space["x"]
        self.n_actions = int(self.action_space.n) if not self.continuous else self.n_genes
        if s["seed"] is not None:
            self.reset(seed=int(s["seed"]))

    # ---- helpers ------------------------------------------------------------------------

    def _develop(self, duration: float, weights: np.ndarray) -> None:
        if duration > 0:
            self.y = self.ode.simulate(self.y, duration, self.np_random, weights[None, :])

    def _profile(self, y: "np.ndarray | None" = None) -> np.ndarray:
        return self.ode.gene_expression(self.y if y is None else y)[0]

    def reached_profile(self) -> np.ndarray:
        """The cell's expression profile now (genes, mRNA units): at an episode's end, the one reached."""
        return self._profile()

    def _distance(self) -> float:
        d = (self._profile() - self.target_profile) / self._scale
        return float(np.sqrt(np.mean(d ** 2)))

    def _random_weights(self) -> np.ndarray:
        w = np.zeros(self.n_genes)
        pool = np.flatnonzero(self._perturbable)
        size = int(self.np_random.integers(0, min(self.max_perturb, len(pool)) + 1))
        for g in self.np_random.choice(pool, size=size, replace=False):
            w[g] = -1.0 if self.kinds[int(self.np_random.integers(len(self.kinds)))] == KNOCKOUT else 1.0
        return w

    def _mask(self) -> np.ndarray:
        if self.continuous:
            return self._perturbable.astype(np.float32)
        mask = np.ones(self.n_actions, dtype=np.float32)
        if self.task != "predict":
            n_used = int((self.weights != 0).sum())
            allowed = (self.weights == 0) & self._perturbable & (n_used < self.max_perturb)
            mask[1:] = np.repeat(allowed, len(self.kinds)).astype(np.float32)
        return mask

    def _obs(self) -> dict[str, np.ndarray]:
        x = self._static.copy()
        x[:, 0] = np.clip(self._profile() / self._scale, 0.0, 1.0)
        x[:, 1] = np.maximum(-self.weights, 0.0)
        x[:, 2] = np.maximum(self.weights, 0.0)
        x[:, 5] = self.stage / self.n_stages
        if self.task != "predict":
            used = int((self.weights != 0).sum())
            x[:, 6] = (self.max_perturb - used) / self.max_perturb
        if self.task == "trajectory":
            on = self.target_profile / self._scale > 0.5
            x[:, 3], x[:, 4] = on, ~on
        if self.settings["observation"] != "graph":
            x = x.reshape(-1)
        if self.vector:
            return x.astype(np.float32)
        return {"x": x.astype(np.float32), "action_mask": self._mask()}

    def _fate(self) -> int:
        return int(self.ode.classify(self.y)[0])

    # ---- gymnasium API --------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        s = self.settings
        starts = s["start"]
        self.start_name = options.get("start") or starts[int(self.np_random.integers(len(starts)))]
        self.y = self.ode.start(self.start_name, s["condition"])
        if options.get("start_profile") is not None:
            self.y = self.ode.model.state_from_mrna(self._mrna_of(options["start_profile"], "start_profile"))
        self.weights = np.zeros(self.n_genes)
        self.stage = 0
        self.predictions: list[int] = []
        info: dict[str, Any] = {"start": self.start_name}
        if self.task == "predict":
            self._sample_predict_episode()
        elif self.task == "trajectory":
            self.start_profile = self._profile()
            if options.get("target_profile") is not None:
                target = np.asarray(options["target_profile"], dtype=np.float64).ravel()
                if target.shape != (self.n_genes,):
                    raise UserInputError(f"target_profile must have {self.n_genes} values (genes of {self.world.name}), got {target.shape}")
                self.target_profile = target
                self.hidden_weights = None
            else:
                self.hidden_weights = self._random_weights()
                later = self.ode.simulate(self.y, self.n_stages * s["stage_time"], self.np_random, self.hidden_weights[None, :])
                self.target_profile = self._profile(later)
            self.distance = self._distance()
            info["distance"] = self.distance
        return self._obs(), info

    def _mrna_of(self, profile, what: str) -> np.ndarray:
        p = np.asarray(profile, dtype=np.float64).ravel()
        if self.world.is_multivalued or p.shape != (self.n_genes,):
            raise UserInputError(f"{what} must have {self.n_genes} values (genes of {self.world.name}, Boolean genes only)")
        return p[None, :]

    def _sample_predict_episode(self) -> None:
        s = self.settings
        self.weights = self._random_weights()
        self.stage_states = []
        for _ in range(self.n_stages):
            self.stage_states.append(self.y.copy())
            self._develop(s["stage_time"], self.weights)
        self._develop(s["settle_time"], self.weights)
        self.realized_fate = self._fate()
        self.y = self.stage_states[0]

    def _continuous_weights(self, action) -> np.ndarray:
        w = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if w.shape != (self.n_genes,):
            raise UserInputError(f"a continuous action has {self.n_genes} gene weights, got shape {np.shape(action)}")
        w = np.where(self._perturbable, w, 0.0)
        if np.count_nonzero(w) > self.max_perturb:
            keep = np.argsort(-np.abs(w), kind="stable")[: self.max_perturb]
            kept = np.zeros_like(w)
            kept[keep] = w[keep]
            w = kept
        return w

    def step(self, action):
        if self.task == "predict":
            return self._step_predict(int(action))
        s = self.settings
        reward = 0.0
        info: dict[str, Any] = {}
        advance = True
        if self.continuous:
            self.weights = self._continuous_weights(action)
            reward -= s["perturbation_cost"] * float(np.abs(self.weights).sum())
        else:
            action = int(action)
            valid = 0 <= action < self.n_actions and self._mask()[action] > 0
            if not valid:
                reward -= s["invalid_action_penalty"]
                info["invalid_action"] = True
            elif action != NO_PERTURBATION:
                g, k = divmod(action - 1, len(self.kinds))
                self.weights = self.weights.copy()
                self.weights[g] = -1.0 if self.kinds[k] == KNOCKOUT else 1.0
                reward -= s["perturbation_cost"]
                advance = False
        if advance:
            self._develop(s["stage_time"], self.weights)
            self.stage += 1
            if self.task == "trajectory":
                d = self._distance()
                reward += self.distance - d
                self.distance = d
        terminated = self.stage >= self.n_stages
        if terminated:
            info["perturbations"] = {self.world.genes[g]: float(self.weights[g]) for g in np.flatnonzero(self.weights)}
            if self.task == "steer":
                self._develop(s["settle_time"], self.weights)
                fate = self._fate()
                success = fate == self.target_index
                reward += float(success)
                info.update(fate=self.world.fate_labels[fate], success=bool(success))
            else:
                info["distance"] = self.distance
                info.update(trajectory_metrics(self.start_profile, self._profile(), self.target_profile,
                                               self.ode.params.x_max))
        return self._obs(), float(reward), terminated, False, info

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
            info.update(
                fate=labels[self.realized_fate],
                predictions=[labels[p] if p >= 0 else None for p in self.predictions],
                accuracy=float(np.mean([p == self.realized_fate for p in self.predictions])),
            )
        else:
            self.y = self.stage_states[self.stage]
        return self._obs(), float(reward), terminated, False, info

    def render(self):
        fate = self.world.fate_labels[self._fate()]
        expr = ", ".join(f"{g}={v:.2f}" for g, v in zip(self.world.genes, self._profile()))
        return f"stage {self.stage}/{self.n_stages} nearest={fate} {expr}"

