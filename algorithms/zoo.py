"""Registers A2C, TRPO, SAC, TRPO_to_PPO, PPO_to_TRPO and LoRA_staged with the registry.

Each name's ``algo_hparams`` keys and defaults are in one dict here (``*_DEFAULTS``).
The registry imports the file named for an algorithm in ``registry.PROVIDERS``;
those files import this one at their end, so asking for any of these names
registers all of them.

Defaults follow the library the seed used (SB3 / sb3-contrib) except the batch
sizes, which are set for RLlib's per-iteration overhead and short cell-fate
episodes (see each dict).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from algorithms.a2c import A2CConfig, A2CTorchLearner
from algorithms.registry import apply_common, register_algorithm
from algorithms.staged import STAGED_HPARAMS, staged_stages
from algorithms.trpo import TRPO_HPARAMS, TRPOConfig, TRPOTorchLearner

if TYPE_CHECKING:
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


def _settings(defaults: dict[str, Any], hparams: dict, aliases: dict[str, str] | None = None) -> dict[str, Any]:
    given = {(aliases or {}).get(k, k): v for k, v in hparams.items()}
    return {**defaults, **{k: v for k, v in given.items() if k in defaults}}


def a2c_config(config: "TrialConfig", hparams: dict) -> A2CConfig:
    """A2C for a trial: one gradient step per batch of ``train_batch_size`` env steps."""
    h = _settings(A2C_DEFAULTS, hparams)
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


def trpo_config(config: "TrialConfig", hparams: dict) -> TRPOConfig:
    """TRPO for a trial; the trial's optimizer trains the critic."""
    h = _settings(TRPO_DEFAULTS, hparams, TRPO_ALIASES)
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


register_algorithm("A2C", config_builder=a2c_config, hparams=A2C_DEFAULTS)
register_algorithm("TRPO", config_builder=trpo_config, hparams=[*TRPO_DEFAULTS, *TRPO_ALIASES])
register_algorithm("TRPO_to_PPO", stage_builder=staged_stages, hparams=STAGED_HPARAMS)
register_algorithm("PPO_to_TRPO", stage_builder=staged_stages, hparams=STAGED_HPARAMS)
