"""Training throughput of one trial (PPO, GNN and MLP) against Stable-Baselines3 PPO, side by side.

Both sides train on the same CellFateEnv settings (myeloid world, steer, target
Mo, MAX_PERTURB 2) with the same PPO hyperparameters: train batch = SB3's
n_envs * n_steps, minibatch = batch_size, epochs = n_epochs, gamma, GAE lambda,
entropy and value coefficients, clip range, gradient-norm clip, separate 64x64
tanh actor and critic networks, Adam at the same learning rate, one torch
thread, and the same number of environments stepped in lockstep (our
``num_envs_per_env_runner`` = SB3's DummyVecEnv size).

SB3 sees the flat observation as one Box, the node features followed by the
action mask (plain PPO, no masking: an invalid action is a penalised no-op in
the environment). That is the MLP setup a user would pick and the cheapest per
step on SB3's side; sb3-contrib's MaskablePPO would add a mask query per step.

Throughput is env steps of training (sampling + updates) per wall second,
excluding construction; ``ratio_vs_sb3`` = ours / SB3's from the same run.
"""

from __future__ import annotations

import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.cell_fate_env import CellFateEnv
from envs.world import load_world

ENV = {"task": "steer", "target": "Mo", "max_perturb": 2}


class FlatBoxObservation(gym.ObservationWrapper):
    """CellFateEnv(flat) with observation concat(x, action_mask) as one Box, for SB3."""

    def __init__(self, env: CellFateEnv):
        super().__init__(env)
        size = sum(int(np.prod(s.shape)) for s in env.observation_space.spaces.values())
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([observation["x"].reshape(-1), observation["action_mask"]]).astype(np.float32)


def _ppo_settings(algo_hparams: dict[str, Any]) -> Any:
    from algorithms.ppo import PPOSettings

    return PPOSettings.from_dict(algo_hparams, task=ENV["task"])


def sb3_steps_per_s(env_steps: int, algo_hparams: dict[str, Any], lr: float, seed: int = 0, n_envs: int = 1) -> float:
    """SB3 PPO (MlpPolicy) on the flat observation with our PPO settings; env steps / s."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    h = _ppo_settings(algo_hparams)
    world = load_world("myeloid")

    def make():
        return FlatBoxObservation(CellFateEnv({**ENV, "world": world, "observation": "flat"}))

    vec = DummyVecEnv([make for _ in range(n_envs)])
    model = PPO(
        "MlpPolicy",
        vec,
        n_steps=h.train_batch_size // n_envs,
        batch_size=h.minibatch_size,
        n_epochs=h.num_epochs,
        gamma=h.gamma,
        gae_lambda=h.lambda_,
        ent_coef=h.entropy_coeff,
        vf_coef=h.vf_loss_coeff,
        clip_range=h.clip_param,
        max_grad_norm=h.grad_clip,
        learning_rate=lr,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=env_steps)
    return model.num_timesteps / (time.perf_counter() - start)


def ours_steps_per_s(env_steps: int, module: str, algorithm: str, algo_hparams: dict[str, Any], lr: float, seed: int = 0) -> float:
    """One TrialRunner trained to `env_steps` in this process; env steps / s."""
    from algorithms.trial import TrialConfig, TrialRunner

    runner = TrialRunner(
        TrialConfig(
            world=load_world("myeloid"),
            **ENV,
            algorithm=algorithm,
            module=module,
            optimizer="adam",
            optimizer_hparams={"lr": lr},
            algo_hparams=dict(algo_hparams),
            env_steps=env_steps,
            seed=seed,
        )
    )
    try:
        start = time.perf_counter()
        while not runner.done:
            runner.train_iteration()
        return runner.env_steps / (time.perf_counter() - start)
    finally:
        runner.stop()


def bench_train(
    env_steps: int = 20000,
    modules: tuple[str, ...] = ("gnn", "mlp"),
    algorithm: str = "PPO",
    include_sb3: bool = True,
    algo_hparams: dict[str, Any] | None = None,
    lr: float = 3e-4,
) -> list[dict]:
    """Per module kind: steps_per_s, sb3_steps_per_s, ratio_vs_sb3 (one torch thread each)."""
    torch.set_num_threads(1)
    algo_hparams = dict(algo_hparams or {})
    # A tiny warm-up trial: Ray start, world load and first-build costs stay out of the timings.
    ours_steps_per_s(min(env_steps, 256), "mlp", algorithm, {**algo_hparams, "train_batch_size": 256}, lr)
    sb3 = math.nan
    if include_sb3:
        try:
            sb3 = sb3_steps_per_s(env_steps, algo_hparams, lr)
        except ImportError:
            sb3 = math.nan
    h = _ppo_settings(algo_hparams)
    rows = []
    for module in modules:
        ours = ours_steps_per_s(env_steps, module, algorithm, algo_hparams, lr)
        rows.append(
            {
                "module": module,
                "algorithm": algorithm,
                "env_steps": env_steps,
                "train_batch": h.train_batch_size,
                "minibatch": h.minibatch_size,
                "epochs": h.num_epochs,
                "n_envs": h.num_envs_per_env_runner,
                "steps_per_s": round(ours, 1),
                "sb3_steps_per_s": round(sb3, 1),
                "ratio_vs_sb3": round(ours / sb3, 3) if sb3 == sb3 else math.nan,
            }
        )
    return rows
