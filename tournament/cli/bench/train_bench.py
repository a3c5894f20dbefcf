"""Training throughput of one trial (PPO, A2C, SAC; GNN and MLP) against Stable-Baselines3, side by side.

Both sides train on the same CellFateEnv settings (myeloid world, steer, target
Mo, MAX_PERTURB 2) with the same settings, read from our settings dataclasses
(algorithms.ppo.PPOSettings, algorithms.a2c.A2CSettings, algorithms.sac.SACSettings,
defaults unless ``algo_hparams`` says otherwise) and handed to SB3 under its names:

- the same number of environments: our ``num_envs_per_env_runner`` (one
  BatchedCellFateEnv per env runner) = SB3's DummyVecEnv size;
- PPO: train batch = SB3's n_envs * n_steps, minibatch = batch_size, epochs =
  n_epochs, gamma, GAE lambda, entropy and value coefficients, clip range,
  gradient-norm clip;
- A2C: one gradient step per train batch on both sides (SB3: n_steps = train
  batch / n_envs), Adam on both sides (SB3's default RMSprop is not one of ours),
  advantages standardised on both sides;
- SAC (discrete) against SB3 DQN, SB3's nearest algorithm for discrete actions:
  the same replay capacity, replay batch, learning_starts, gamma, tau and update
  intensity (gradient steps per env step: ours ``gradient_steps / train_freq``
  whatever the number of envs; SB3 counts train_freq in vectorised steps, so it
  gets ``n_envs * gradient_steps / train_freq`` gradient steps per vectorised
  step; its target network moves once per vectorised step, ours after every
  gradient step). SAC does more per gradient step than DQN (twin Q-networks, an
  actor and the temperature), which this ratio includes;
- the same network widths: our module's ``hidden`` x ``layers`` (DEFAULT_OPTIONS)
  as SB3's net_arch, tanh; the MLP module's critic has one more hidden layer
  than its actor (encoder + value head), so SB3's vf gets it too;
- Adam at the same learning rate, one torch thread each, construction excluded.

Our modules come in three variants (``MODULE_VARIANTS``): the MLP, the GNN as the tournament
builds it (actor and critic each with their own encoder), and ``gnn_shared``, the GNN with one
encoder for both (``share_encoder: true``, SB3's convention for its CNN policies), benched for
PPO and A2C so the option's speed sits next to the default's.

SB3 sees the flat observation as one Box, the node features followed by the
action mask (no masking: an invalid action is a penalised no-op in the
environment). That is the MLP setup a user would pick and the cheapest per step
on SB3's side; sb3-contrib's MaskablePPO would add a mask query per step.

Each (algorithm, repetition) runs SB3 and each of our modules in turn, the side
that goes first alternating between repetitions; a row reports the median of
each side over the repetitions, ``ratio_vs_sb3`` = median ours / median SB3, and
the per-repetition ratios (ours / the SB3 run next to it). Every row carries the
settings both sides actually received, read back from the built RLlib config and
SB3 model, and the bench refuses to report a row whose shared settings differ.
Throughput is env steps of training (sampling + updates) per wall second.
SAC gets a smaller budget (``sac_env_steps``, 512 by default: 412 gradient steps
after learning_starts 100): one gradient step per env step, about 5 ms each for the
MLP and 55 ms for the GNN (its six encoder passes over 256 graphs; the profile is in
BENCHMARKS.md), so 2000 steps would take minutes per GNN run.

Size: over 350 lines so both sides of the comparison, and the settings each prints, live in one
file and cannot drift apart.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.cell_fate_env import CellFateEnv
from envs.world import load_world

ENV = {"task": "steer", "target": "Mo", "max_perturb": 2}
ALGORITHMS = ("PPO", "A2C", "SAC")
# The bench's module variants: (module kind, module options). "gnn_shared" is the GNN with one
# encoder for actor and critic (``share_encoder``, off by default): half the encoder work of an
# on-policy update; SAC's networks have no critic encoder to share, so SAC skips it.
MODULE_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gnn": ("gnn", {}),
    "gnn_shared": ("gnn", {"share_encoder": True}),
    "mlp": ("mlp", {}),
}
SB3_ALGORITHM = {"PPO": "PPO", "A2C": "A2C", "SAC": "DQN"}
# Settings compared between the two sides; a row whose sides differ in any of them is an error.
SHARED = ("n_envs", "batch", "minibatch", "epochs", "hidden", "updates_per_step", "buffer", "learning_starts", "gamma", "lr", "threads")


class FlatBoxObservation(gym.ObservationWrapper):
    """CellFateEnv(flat) with observation concat(x, action_mask) as one Box, for SB3."""

    def __init__(self, env: CellFateEnv):
        super().__init__(env)
        size = sum(int(np.prod(s.shape)) for s in env.observation_space.spaces.values())
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([observation["x"].reshape(-1), observation["action_mask"]]).astype(np.float32)


def module_variant(name: str) -> tuple[str, dict[str, Any]]:
    """(module kind, module options) of a MODULE_VARIANTS name."""
    if name not in MODULE_VARIANTS:
        raise ValueError(f"unknown module {name!r}; valid choices: {', '.join(MODULE_VARIANTS)}")
    return MODULE_VARIANTS[name]


def settings_of(algorithm: str, algo_hparams: Mapping[str, Any] | None = None) -> Any:
    """Our settings dataclass of `algorithm` (its defaults under `algo_hparams`)."""
    if algorithm == "PPO":
        from algorithms.ppo import PPOSettings as cls
    elif algorithm == "A2C":
        from algorithms.a2c import A2CSettings as cls
    elif algorithm == "SAC":
        from algorithms.sac import SACSettings as cls
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}; valid choices: {', '.join(ALGORITHMS)}")
    return cls.from_dict(dict(algo_hparams or {}), task=ENV["task"])


def module_widths(module: str = "mlp") -> tuple[int, int]:
    """(hidden, layers) of our module's defaults, which SB3's net_arch copies."""
    from algorithms.modules import DEFAULT_OPTIONS

    options = DEFAULT_OPTIONS[module]
    return int(options["hidden"]), int(options["layers"])


# ---- our side ---------------------------------------------------------------------------------


def build_ours(algorithm: str, module: str, env_steps: int, algo_hparams: Mapping[str, Any] | None, lr: float, seed: int = 0) -> Any:
    """A TrialRunner for `algorithm` / `module` (a MODULE_VARIANTS name) with a budget of
    `env_steps` (built, not trained)."""
    from algorithms.trial import TrialRunner
    from algorithms.trial_plan import TrialPlan

    kind, options = module_variant(module)
    return TrialRunner(
        TrialPlan(
            world=load_world("myeloid"),
            **ENV,
            algorithm=algorithm,
            module=kind,
            module_options=dict(options),
            optimizer="adam",
            optimizer_hparams={"lr": lr},
            algo_hparams=dict(algo_hparams or {}),
            env_steps=env_steps,
            seed=seed,
        )
    )


def _on_policy(batch: int, minibatch: int, epochs: int) -> dict[str, Any]:
    """The update-intensity columns of an on-policy side: epochs passes over a batch in minibatches."""
    return {"batch": batch, "minibatch": minibatch, "epochs": epochs,
            "updates_per_step": epochs * math.ceil(batch / minibatch) / batch, "buffer": None, "learning_starts": None}


def ours_received(runner: Any) -> dict[str, Any]:
    """The settings our trial runs with, read back from its built RLlib config and learner."""
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights
    from ray.rllib.core import DEFAULT_MODULE_ID

    from algorithms.common import local_learner

    cfg = runner.algo.config
    model = cfg.rl_module_spec.model_config
    n_envs = int(cfg.num_envs_per_env_runner)
    optimizers = local_learner(runner.algo).get_optimizers_for_module(DEFAULT_MODULE_ID)
    lrs = {float(group["lr"]) for _, opt in optimizers for group in opt.param_groups}
    out: dict[str, Any] = {
        "n_envs": n_envs,
        "hidden": f"{model['hidden']}x{model['layers']}",
        "gamma": float(cfg.gamma),
        "lr": float(lrs.pop()) if len(lrs) == 1 else sorted(lrs),
        "threads": torch.get_num_threads(),
    }
    if runner.config.algorithm == "SAC":
        store, train = calculate_rr_weights(cfg)
        fragment = int(cfg.get_rollout_fragment_length())
        batch = int(cfg.train_batch_size_per_learner)
        out.update(
            batch=batch,
            minibatch=batch,
            epochs=None,
            # `train` gradient steps after every `store` samples of fragment x n_envs env steps.
            updates_per_step=train / (store * fragment * n_envs),
            buffer=int(cfg.replay_buffer_config["capacity"]),
            learning_starts=int(cfg.num_steps_sampled_before_learning_starts),
        )
    else:
        batch = int(cfg.train_batch_size_per_learner)
        out.update(_on_policy(batch, int(cfg.minibatch_size or batch), int(cfg.num_epochs)))
    return out


def ours_description(runner: Any, received: Mapping[str, Any]) -> str:
    cfg = runner.config
    model = runner.algo.config.rl_module_spec.model_config
    shared = ", one encoder for actor and critic" if model.get("share_encoder") else ""
    net = f"gnn {model['conv']} {received['hidden']}{shared}" if cfg.module == "gnn" else f"mlp {received['hidden']} (critic {model['hidden']}x{model['layers'] + 1})"
    parts = [f"{cfg.algorithm} {net}", f"BatchedCellFateEnv x{received['n_envs']}"]
    if cfg.algorithm == "SAC":
        parts.append(f"replay {received['buffer']} batch {received['batch']}, {received['updates_per_step']:g} updates/step, starts {received['learning_starts']}")
    else:
        parts.append(f"batch {received['batch']} minibatch {received['minibatch']} epochs {received['epochs']}")
    parts.append(f"adam lr {received['lr']:g}, {received['threads']} thread")
    return "; ".join(parts)


def ours_steps_per_s(env_steps: int, module: str, algorithm: str, algo_hparams: dict[str, Any] | None, lr: float, seed: int = 0) -> float:
    """One TrialRunner trained to `env_steps` in this process; env steps / s (construction excluded)."""
    return _time_ours(build_ours(algorithm, module, env_steps, algo_hparams, lr, seed))[0]


def _time_ours(runner: Any) -> tuple[float, dict[str, Any], str]:
    try:
        received = ours_received(runner)
        description = ours_description(runner, received)
        start = time.perf_counter()
        while not runner.done:
            runner.train_iteration()
        return runner.env_steps / (time.perf_counter() - start), received, description
    finally:
        runner.stop()


# ---- SB3's side -------------------------------------------------------------------------------


def build_sb3(algorithm: str, algo_hparams: Mapping[str, Any] | None, lr: float, seed: int = 0) -> Any:
    """The SB3 model that `algorithm` (ours) is compared with, on our settings (built, not trained)."""
    from stable_baselines3 import A2C, DQN, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    s = settings_of(algorithm, algo_hparams)
    n_envs = s.num_envs_per_env_runner
    hidden, layers = module_widths("mlp")
    world = load_world("myeloid")
    torch.set_num_threads(s.torch_threads)

    def make():
        return FlatBoxObservation(CellFateEnv({**ENV, "world": world, "observation": "flat"}))

    vec = DummyVecEnv([make for _ in range(n_envs)])
    common = dict(learning_rate=lr, gamma=s.gamma, seed=seed, device="cpu", verbose=0)
    # Our MLP module: encoder hidden x layers then a linear head; critic = encoder + one more hidden layer.
    actor_critic = {"net_arch": {"pi": [hidden] * layers, "vf": [hidden] * (layers + 1)}, "activation_fn": torch.nn.Tanh}
    if algorithm == "PPO":
        if s.train_batch_size % n_envs:
            raise ValueError(f"PPO train_batch_size {s.train_batch_size} is not a multiple of n_envs {n_envs}")
        return PPO(
            "MlpPolicy",
            vec,
            n_steps=s.train_batch_size // n_envs,
            batch_size=s.minibatch_size,
            n_epochs=s.num_epochs,
            gae_lambda=s.lambda_,
            ent_coef=s.entropy_coeff,
            vf_coef=s.vf_loss_coeff,
            clip_range=s.clip_param,
            max_grad_norm=s.grad_clip,
            policy_kwargs=actor_critic,
            **common,
        )
    if algorithm == "A2C":
        if s.train_batch_size % n_envs:
            raise ValueError(f"A2C train_batch_size {s.train_batch_size} is not a multiple of n_envs {n_envs}")
        return A2C(
            "MlpPolicy",
            vec,
            n_steps=s.train_batch_size // n_envs,
            gae_lambda=s.lambda_,
            ent_coef=s.entropy_coeff,
            vf_coef=s.vf_loss_coeff,
            max_grad_norm=s.grad_clip,
            use_rms_prop=False,
            normalize_advantage=True,
            policy_kwargs={**actor_critic, "optimizer_class": torch.optim.Adam},
            **common,
        )
    if algorithm == "SAC":
        per_vec_step = n_envs * s.gradient_steps / s.train_freq
        if per_vec_step != int(per_vec_step):
            raise ValueError(f"SAC's {s.gradient_steps} gradient steps per {s.train_freq} env steps are no whole number per step of {n_envs} envs")
        with warnings.catch_warnings():
            # SB3 updates DQN's target once per vectorised step when n_envs > target_update_interval
            # (ours: after every gradient step); a Polyak step is cheap next to the gradient steps.
            warnings.filterwarnings("ignore", message="The number of environments used is greater than the target network update interval")
            return DQN(
                "MlpPolicy",
                vec,
                buffer_size=s.buffer_size,
                batch_size=s.batch_size,
                learning_starts=s.learning_starts,
                tau=s.tau,
                train_freq=(1, "step"),
                gradient_steps=int(per_vec_step),
                target_update_interval=s.target_update_interval,
                policy_kwargs={"net_arch": [hidden] * layers, "activation_fn": torch.nn.Tanh},
                **common,
            )
    raise ValueError(f"unknown algorithm {algorithm!r}; valid choices: {', '.join(ALGORITHMS)}")


def _sb3_lr(model: Any) -> float:
    lrs = {group["lr"] for group in model.policy.optimizer.param_groups}
    return float(lrs.pop()) if len(lrs) == 1 else sorted(lrs)


def sb3_received(model: Any) -> dict[str, Any]:
    """The settings the SB3 model runs with, read back from the model (same keys as ours_received)."""
    from stable_baselines3 import DQN

    n_envs = int(model.n_envs)
    out: dict[str, Any] = {"n_envs": n_envs, "gamma": float(model.gamma), "lr": _sb3_lr(model), "threads": torch.get_num_threads()}
    if isinstance(model, DQN):
        if model.train_freq.unit.value != "step":
            raise ValueError("the DQN side must train every n steps, not every n episodes")
        arch = list(model.policy.net_arch)
        out.update(
            hidden=f"{arch[0]}x{len(arch)}" if len(set(arch)) == 1 else str(arch),
            batch=int(model.batch_size),
            minibatch=int(model.batch_size),
            epochs=None,
            # gradient_steps every train_freq vectorised steps of n_envs env steps.
            updates_per_step=model.gradient_steps / (model.train_freq.frequency * n_envs),
            buffer=int(model.buffer_size),
            learning_starts=int(model.learning_starts),
        )
        return out
    arch = model.policy.net_arch["pi"]
    batch = int(model.n_steps) * n_envs
    # A2C: one gradient step on the whole rollout; PPO: n_epochs passes in minibatches of batch_size.
    out.update(
        hidden=f"{arch[0]}x{len(arch)}" if len(set(arch)) == 1 else str(arch),
        **_on_policy(batch, int(getattr(model, "batch_size", None) or batch), int(getattr(model, "n_epochs", 1))),
    )
    return out


def sb3_description(model: Any, received: Mapping[str, Any]) -> str:
    from stable_baselines3 import DQN

    name = type(model).__name__
    if isinstance(model, DQN):
        return (
            f"DQN MlpPolicy {received['hidden']}; DummyVecEnv x{received['n_envs']}; "
            f"buffer {received['buffer']} batch {received['batch']}, train_freq {model.train_freq.frequency} "
            f"gradient_steps {model.gradient_steps} ({received['updates_per_step']:g} updates/step), starts {received['learning_starts']}; "
            f"adam lr {received['lr']:g}, {received['threads']} thread"
        )
    arch = model.policy.net_arch
    steps = f"n_steps {model.n_steps}" + (f" batch_size {model.batch_size} n_epochs {model.n_epochs}" if hasattr(model, "n_epochs") else "")
    return (
        f"{name} MlpPolicy pi {arch['pi']} vf {arch['vf']}; DummyVecEnv x{received['n_envs']}; {steps} "
        f"(batch {received['batch']}); adam lr {received['lr']:g}, {received['threads']} thread"
    )


def sb3_steps_per_s(env_steps: int, algo_hparams: dict[str, Any] | None, lr: float, seed: int = 0, algorithm: str = "PPO") -> float:
    """The SB3 side of `algorithm` (PPO, A2C; SAC -> DQN) trained `env_steps`; env steps / s."""
    return _time_sb3(build_sb3(algorithm, algo_hparams, lr, seed), env_steps)[0]


def _time_sb3(model: Any, env_steps: int) -> tuple[float, dict[str, Any], str]:
    received = sb3_received(model)
    description = sb3_description(model, received)
    start = time.perf_counter()
    model.learn(total_timesteps=env_steps)
    rate = model.num_timesteps / (time.perf_counter() - start)
    model.env.close()
    return rate, received, description


def check_equal(ours: Mapping[str, Any], sb3: Mapping[str, Any], what: str) -> None:
    """Raise when the two sides received different shared settings."""
    diff = {k: (ours.get(k), sb3.get(k)) for k in SHARED if ours.get(k) != sb3.get(k)}
    if diff:
        raise AssertionError(f"train bench {what}: the sides' settings differ (ours, SB3): {diff}")


# ---- the bench --------------------------------------------------------------------------------


def modules_of(algorithm: str, modules: tuple[str, ...]) -> list[str]:
    """The module variants benched for `algorithm`: all of `modules`, SAC without gnn_shared."""
    return [m for m in modules if not (algorithm == "SAC" and m == "gnn_shared")]


def bench_train(
    env_steps: int = 20000,
    modules: tuple[str, ...] = tuple(MODULE_VARIANTS),
    algorithms: tuple[str, ...] = ALGORITHMS,
    include_sb3: bool = True,
    algo_hparams: dict[str, Any] | None = None,
    lr: float = 3e-4,
    sac_env_steps: int | None = None,
    repetitions: int = 3,
    algorithm: str | None = None,
) -> list[dict]:
    """One row per (algorithm, module): medians over `repetitions` alternating runs of each side.

    `env_steps` is the budget of PPO and A2C, `sac_env_steps` (at most `env_steps`) SAC's and
    DQN's, by default env_steps / 40 in whole iterations of 256 steps, at least one (512 at the
    default 20000, 256 for --quick); `algorithm` alone restricts the bench to it; `algo_hparams`
    go to every algorithm; `modules` are MODULE_VARIANTS names.
    """
    torch.set_num_threads(1)
    for module in modules:
        module_variant(module)  # an unknown module fails before anything runs
    if algorithm is not None:
        algorithms = (algorithm,)
    for name in algorithms:
        settings_of(name, algo_hparams)  # an unknown algorithm or setting fails before anything runs
    if sac_env_steps is None:
        sac_env_steps = 256 * max(1, round(env_steps / 40 / 256))
    budgets = {name: min(sac_env_steps, env_steps) if name == "SAC" else env_steps for name in algorithms}
    # A tiny warm-up trial: Ray start, world load and first-build costs stay out of the timings.
    ours_steps_per_s(256, "mlp", "PPO", {"train_batch_size": 256}, lr)

    rates: dict[tuple[str, str], list[float]] = {}
    received: dict[tuple[str, str], tuple[dict, str]] = {}
    for rep in range(repetitions):
        for name in algorithms:
            sides = modules_of(name, modules)
            if include_sb3:
                # SB3 first in even repetitions, last in odd ones: drift on a shared machine hits both sides.
                sides = ["sb3", *sides] if rep % 2 == 0 else [*sides, "sb3"]
            for side in sides:
                if side == "sb3":
                    try:
                        model = build_sb3(name, algo_hparams, lr, seed=rep)
                    except ImportError:
                        include_sb3 = False
                        continue
                    rate, got, text = _time_sb3(model, budgets[name])
                else:
                    rate, got, text = _time_ours(build_ours(name, side, budgets[name], algo_hparams, lr, seed=rep))
                rates.setdefault((name, side), []).append(rate)
                received[(name, side)] = (got, text)
                print(f"train bench: {name} {side} rep {rep + 1}/{repetitions}: {rate:.0f} env steps/s", file=sys.stderr, flush=True)
            if (name, "sb3") in received:
                for module in modules_of(name, modules):
                    check_equal(received[(name, module)][0], received[(name, "sb3")][0], f"{name} {module}")

    rows = []
    for name in algorithms:
        sb3_rates = rates.get((name, "sb3"), [])
        sb3_median = statistics.median(sb3_rates) if sb3_rates else math.nan
        sb3_text = received.get((name, "sb3"), ({}, ""))[1]
        for module in modules_of(name, modules):
            ours_rates = rates[(name, module)]
            got, text = received[(name, module)]
            median = statistics.median(ours_rates)
            rows.append(
                {
                    "algorithm": name,
                    "module": module,
                    "sb3": SB3_ALGORITHM[name] + " mlp",
                    "env_steps": budgets[name],
                    "n_envs": got["n_envs"],
                    "batch": got["batch"],
                    "minibatch": got["minibatch"],
                    "epochs": got["epochs"],
                    "hidden": got["hidden"],
                    "updates_per_step": round(got["updates_per_step"], 5),
                    "repetitions": len(ours_rates),
                    "steps_per_s": round(median, 1),
                    "sb3_steps_per_s": round(sb3_median, 1),
                    "ratio_vs_sb3": round(median / sb3_median, 3) if sb3_rates else math.nan,
                    "ratio_per_rep": " ".join(f"{o / s:.2f}" for o, s in zip(ours_rates, sb3_rates)),
                    "ours_settings": text,
                    "sb3_settings": sb3_text,
                    "note": f"smaller budget: {budgets[name]} env steps (one gradient step per env step); vs SB3 DQN, the nearest SB3 algorithm for discrete actions"
                    if name == "SAC"
                    else "",
                }
            )
    return rows


if __name__ == "__main__":
    from tournament.cli.bench.record import markdown_table

    print(markdown_table(bench_train()))
