"""External check of our A2C and TRPO: CartPole-v1 against SB3's A2C and sb3-contrib's TRPO.

Both sides get the same budget, the same hyperparameters and the same network
(separate 64x64 tanh actor and critic MLPs), with Adam (eps 1e-5, SB3's Adam
default) as the optimizer on both sides: A2C's SB3 default RMSprop is not one of
the tournament's optimizers. Differences that remain: RLlib's default weight
initialisation (SB3 uses orthogonal), and RLlib's GAE always standardises
advantages (SB3's A2C is told to do the same with ``normalize_advantage=True``).

Per (algorithm, library, seed): the greedy policy's mean return over
``eval_episodes`` fresh episodes seeded 10_000, 10_001, ... (disjoint from
training), the mean return of the last training episodes, and wall time. Runs
in this process with one torch thread.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from algorithms.a2c import A2CSettings
from algorithms.trpo import TRPOSettings

EVAL_SEED = 10_000
N_ENVS = 8
ADAM = {"lr": 7e-4, "eps": 1e-5}

# One hyperparameter set per algorithm, the tournament's defaults (A2CSettings, TRPOSettings)
# under SB3's names (their SB3_NAMES), handed to both libraries.
OURS = {"A2C": A2CSettings, "TRPO": TRPOSettings}


def _sb3_named(settings: Any) -> dict[str, Any]:
    return {sb3: getattr(settings, ours) for ours, sb3 in settings.SB3_NAMES.items()}


SETTINGS: dict[str, dict[str, Any]] = {
    "A2C": {
        "n_steps": 8,  # per env: 64 steps per update (CartPole needs more updates than A2C's default batch)
        **_sb3_named(A2CSettings()),
        "lr": 7e-4,
    },
    "TRPO": {
        "n_steps": TRPOSettings().train_batch_size // N_ENVS,  # per env: TRPO's default batch per update
        **_sb3_named(TRPOSettings()),
        "lr": 1e-3,
    },
}


def greedy_return(act: Any, episodes: int) -> float:
    """Mean undiscounted return of ``act(obs) -> action`` on fresh CartPole-v1 episodes."""
    env = gym.make("CartPole-v1")
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(act(obs)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def _ours(algorithm: str, seed: int, env_steps: int) -> tuple[Any, dict]:
    from ray.rllib.core.columns import Columns

    from algorithms.a2c import A2CConfig
    from algorithms.common import learner_module
    from algorithms.optimizer_plumbing import optimizer_settings
    from algorithms.trpo import TRPOConfig

    s = SETTINGS[algorithm]
    settings_class = OURS[algorithm]
    settings = settings_class(
        train_batch_size=s["n_steps"] * N_ENVS, **{ours: s[sb3] for ours, sb3 in settings_class.SB3_NAMES.items()}
    )
    config = settings.apply_to(A2CConfig() if algorithm == "A2C" else TRPOConfig())
    config = (
        config.environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=N_ENVS, rollout_fragment_length=s["n_steps"])
        .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", "vf_share_layers": False})
        .learners(learner_config_dict=optimizer_settings("adam", {**ADAM, "lr": s["lr"]}))
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    train_return = float("nan")
    steps = 0
    while steps < env_steps:
        result = algo.train()
        steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        latest = float(result["env_runners"].get("episode_return_mean", float("nan")))
        # An iteration in which no episode ended reports nan: keep the last real value.
        train_return = latest if np.isfinite(latest) else train_return
    wall = time.perf_counter() - start
    module = learner_module(algo)

    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: torch.as_tensor(obs[None], dtype=torch.float32)})
        return int(out[Columns.ACTION_DIST_INPUTS].argmax(-1)[0])

    row = {"wall_s": wall, "train_return_last": train_return, "env_steps_done": steps}
    return (act, algo), row


def _sb3(algorithm: str, seed: int, env_steps: int) -> tuple[Any, dict]:
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from sb3_contrib import TRPO

    s = SETTINGS[algorithm]
    env = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=seed)
    policy_kwargs = {"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "optimizer_class": torch.optim.Adam, "optimizer_kwargs": {"eps": ADAM["eps"]}}
    common = dict(n_steps=s["n_steps"], gamma=s["gamma"], gae_lambda=s["gae_lambda"], learning_rate=s["lr"], seed=seed, device="cpu", policy_kwargs=policy_kwargs)
    if algorithm == "A2C":
        model = A2C("MlpPolicy", env, ent_coef=s["ent_coef"], vf_coef=s["vf_coef"], max_grad_norm=s["max_grad_norm"], use_rms_prop=False, normalize_advantage=True, **common)
    else:
        sb3_only = {k: s[k] for k in TRPOSettings.SB3_NAMES.values() if k not in common}
        model = TRPO("MlpPolicy", env, **sb3_only, **common)
    start = time.perf_counter()
    model.learn(total_timesteps=env_steps)
    wall = time.perf_counter() - start
    buffer = [ep["r"] for ep in model.ep_info_buffer]
    train_return = float(np.mean(buffer[-20:])) if buffer else float("nan")

    def act(obs: np.ndarray) -> int:
        return int(model.predict(obs, deterministic=True)[0])

    return (act, None), {"wall_s": wall, "train_return_last": train_return, "env_steps_done": int(model.num_timesteps)}


def bench_cartpole(
    algorithms: tuple[str, ...] = ("A2C", "TRPO"),
    seeds: tuple[int, ...] = (0, 1, 2),
    env_steps: int = 50_000,
    eval_episodes: int = 20,
) -> list[dict]:
    """Rows per algorithm x library x seed, then one mean row per algorithm x library."""
    import ray

    torch.set_num_threads(1)
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows: list[dict] = []
    for algorithm in algorithms:
        if algorithm not in SETTINGS:
            raise ValueError(f"unknown algorithm {algorithm!r}; valid choices: {', '.join(SETTINGS)}")
        for library, run in (("ours (RLlib)", _ours), ("sb3", _sb3)):
            for seed in seeds:
                (act, algo), row = run(algorithm, seed, env_steps)
                row["greedy_return"] = greedy_return(act, eval_episodes)
                if algo is not None:
                    algo.stop()
                rows.append({"algorithm": algorithm, "library": library, "seed": seed, **row})
    summary = []
    for algorithm in algorithms:
        for library in ("ours (RLlib)", "sb3"):
            mine = [r for r in rows if r["algorithm"] == algorithm and r["library"] == library]
            summary.append(
                {
                    "algorithm": algorithm,
                    "library": library,
                    "seed": "mean",
                    "wall_s": float(np.mean([r["wall_s"] for r in mine])),
                    "train_return_last": float(np.mean([r["train_return_last"] for r in mine])),
                    "env_steps_done": int(np.mean([r["env_steps_done"] for r in mine])),
                    "greedy_return": float(np.mean([r["greedy_return"] for r in mine])),
                    "greedy_return_per_seed": " ".join(f"{r['greedy_return']:.0f}" for r in mine),
                }
            )
    return rows + summary


if __name__ == "__main__":
    from tournament.cli.bench.record import markdown_table

    print(markdown_table(bench_cartpole()))
