"""Registers A2C, TRPO, SAC, TRPO_to_PPO, PPO_to_TRPO and LoRA_staged with the registry.

Each name's ``algo_hparams`` keys and defaults are in one dict here (``*_DEFAULTS``).
``registry.PROVIDERS`` names this file for all of them, so asking for any of
these names registers all of them. This file imports none of the algorithm files
at import time (the builders import their algorithm when called), so the
algorithm files may import each other without import cycles.

Defaults follow the library the seed used (SB3 / sb3-contrib) except the batch
sizes, which are set for RLlib's per-iteration overhead and short cell-fate
episodes (see each dict). For the predict task gamma defaults to 0, as for PPO
(``algorithms.registry.task_defaults``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from algorithms.registry import Stage, algorithm_settings, apply_common, register_algorithm

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from algorithms.trial import TrialConfig

# SB3's A2C defaults (gamma, gae_lambda 1.0, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5);
# SB3 takes n_steps=5 per env, RLlib's iteration overhead makes 256 per batch the floor.
A2C_DEFAULTS: dict[str, Any] = {
    "train_batch_size": 256,
    "gamma": 0.99,
    "lambda": 1.0,
    "entropy_coeff": 0.0,
    "vf_loss_coeff": 0.5,
    "grad_clip": 0.5,
}

# sb3-contrib's TRPO defaults, except train_batch_size (sb3's n_steps 2048), matched to PPO's.
TRPO_DEFAULTS: dict[str, Any] = {
    "train_batch_size": 1024,
    "gamma": 0.99,
    "lambda": 0.95,
    "target_kl": 0.01,
    "cg_max_steps": 15,
    "cg_damping": 0.1,
    "line_search_shrinking_factor": 0.8,
    "line_search_max_iter": 10,
    "n_critic_updates": 10,
    "batch_size": 128,  # the critic's minibatch, as sb3-contrib names it
    "grad_clip": None,
}
TRPO_ALIASES = {"max_kl": "target_kl"}

# The seed's SB3 SAC settings (SB3 names; mapped to RLlib's in algorithms/sac.py).
SAC_DEFAULTS: dict[str, Any] = {
    "buffer_size": 1_000_000,
    "batch_size": 256,
    "tau": 0.005,
    "train_freq": 1,
    "gradient_steps": 1,
    "ent_coef": "auto",
    "target_entropy": "auto",
    "learning_starts": 100,
    "gamma": 0.99,
    "target_update_interval": 1,
    "grad_clip": None,
    "steps_per_iteration": 256,
    "store_buffer_in_checkpoints": False,
}

# Multi-stage algorithms: the keys they accept (their meaning is documented in
# algorithms/staged.py and algorithms/lora.py).
STAGED_HPARAMS = ("stages", "first_stage_share", "TRPO", "PPO", "A2C")
LORA_HPARAMS = ("stages", "pretrained", "rank", "alpha", "layers", "algorithm", "PPO", "A2C", "TRPO")


def a2c_config(config: "TrialConfig", hparams: dict) -> "AlgorithmConfig":
    """A2C for a trial: one gradient step per batch of ``train_batch_size`` env steps."""
    from algorithms.a2c import A2CConfig, A2CTorchLearner

    h = algorithm_settings(A2C_DEFAULTS, config, hparams)
    algo = apply_common(A2CConfig(), config, hparams, A2CTorchLearner)
    return algo.training(
        train_batch_size_per_learner=int(h["train_batch_size"]),
        gamma=float(h["gamma"]),
        lambda_=float(h["lambda"]),
        entropy_coeff=float(h["entropy_coeff"]),
        vf_loss_coeff=float(h["vf_loss_coeff"]),
        grad_clip=h["grad_clip"],
        grad_clip_by="global_norm",
    )


def trpo_config(config: "TrialConfig", hparams: dict) -> "AlgorithmConfig":
    """TRPO for a trial; the trial's optimizer trains the critic."""
    from algorithms.trpo import TRPO_HPARAMS, TRPOConfig, TRPOTorchLearner

    h = algorithm_settings(TRPO_DEFAULTS, config, hparams, TRPO_ALIASES)
    algo = apply_common(TRPOConfig(), config, hparams, TRPOTorchLearner)
    trpo = {k: h[k] for k in TRPO_HPARAMS if k in h}
    return algo.training(
        train_batch_size_per_learner=int(h["train_batch_size"]),
        gamma=float(h["gamma"]),
        lambda_=float(h["lambda"]),
        grad_clip=h["grad_clip"],
        grad_clip_by="global_norm",
        critic_minibatch_size=int(h["batch_size"]),
        **trpo,
    )


def sac_config(config: "TrialConfig", hparams: dict) -> "AlgorithmConfig":
    """SAC-discrete for a trial: our module with twin Q-heads, all four optimizers plumbed."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from algorithms.sac import SAC_MODULES, SACTorchLearner, sac_training

    h = algorithm_settings(SAC_DEFAULTS, config, hparams)
    algo = apply_common(SACConfig(), config, hparams, SACTorchLearner, module_overrides={"q_heads": 2})
    spec = algo.rl_module_spec
    algo.rl_module(rl_module_spec=RLModuleSpec(module_class=SAC_MODULES[spec.module_class], model_config=spec.model_config))
    return sac_training(algo, h, int(algo.num_envs_per_env_runner))


def staged_stages(config: "TrialConfig") -> list[Stage]:
    from algorithms.staged import staged_stages as build

    return build(config)


def lora_stages(config: "TrialConfig") -> list[Stage]:
    from algorithms.lora import lora_stages as build

    return build(config)


register_algorithm("A2C", config_builder=a2c_config, hparams=A2C_DEFAULTS)
register_algorithm("TRPO", config_builder=trpo_config, hparams=[*TRPO_DEFAULTS, *TRPO_ALIASES])
register_algorithm("SAC", config_builder=sac_config, hparams=SAC_DEFAULTS)
register_algorithm("TRPO_to_PPO", stage_builder=staged_stages, hparams=STAGED_HPARAMS)
register_algorithm("PPO_to_TRPO", stage_builder=staged_stages, hparams=STAGED_HPARAMS)
register_algorithm("LoRA_staged", stage_builder=lora_stages, hparams=LORA_HPARAMS)
