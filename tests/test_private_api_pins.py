"""Every private RLlib / Optuna / Ray attribute the project still uses, pinned in one place.

An upgrade that removes or reroutes one of them fails here, loudly, instead of silently
skipping our code. Where a public API exists the project uses it instead
(``learner_group.foreach_learner`` in algorithms.common.local_learner,
``Learner.get_optimizers_for_module`` in the optimizer plumbing, ``Learner.device`` in
TRPO, a plain ValueError instead of ``AlgorithmConfig._value_error``), so nothing of
those is pinned. What is left, and where it is used:

- RLlib ``Learner._get_optimizer_lr`` and ``TorchLearner._update``: overridden in
  algorithms/rllib_private.py, the one place the algorithms touch RLlib's private API.
- RLlib ``synchronous_parallel_sample(_uses_new_env_runners=, _return_metrics=)``: the
  sample round of SAC's flat replay (algorithms/rllib_private.py ``sample_episodes``), as
  DQN's own training_step calls it; and ``DQNLearner.last_update_ts_by_mid``, which
  algorithms/sac.py sets to +inf so DQNLearner's once-per-update target step never runs
  under the flat replay (the learner moves the targets after every gradient step).
- RLlib ``RLModule._forward`` / ``_forward_train``: the override points RLlib's own
  docs name (``forward_train`` "should not be overridden"), in algorithms/modules/base.py
  and algorithms/sac.py.
- Optuna ``FrozenTrial._trial_id``: tournament/engine/search.py marks a trial interrupted by a
  dead driver (Optuna has no public way to set a user attribute on a RUNNING trial) and
  reads a trial back from its storage by id.
- Ray ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``: tournament/engine/ray_session.py keeps a
  local node on loopback; ``ray._raylet.AuthenticationMode`` / ``get_authentication_mode``:
  tests/test_cluster.py checks token authentication.
"""

from __future__ import annotations

import inspect

import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModule

from algorithms.common import learner_module, local_learner
from algorithms.optimizer_plumbing import optimizer_settings
from algorithms.rllib_private import OptimizerLrMixin, OwnUpdateMixin, current_lr
from algorithms.trpo import TRPOConfig, TRPOSettings, TRPOTorchLearner


def test_the_rllib_learner_hooks_exist_with_their_signatures():
    assert isinstance(inspect.getattr_static(Learner, "_get_optimizer_lr"), staticmethod)
    assert isinstance(inspect.getattr_static(TorchLearner, "_get_optimizer_lr"), staticmethod)
    assert list(inspect.signature(TorchLearner._get_optimizer_lr).parameters) == ["optimizer"]
    assert list(inspect.signature(TorchLearner._update).parameters) == ["self", "batch"]
    # Learner.update hands every minibatch to _update and unpacks three values.
    assert "fwd_out, loss_per_module, _ = self._update(" in inspect.getsource(Learner.update)
    # Our overrides are the ones the learners resolve.
    assert TRPOTorchLearner._update is OwnUpdateMixin._update
    # SAC's learner runs RLlib's own _update on each minibatch of a round (RoundUpdateMixin).
    from algorithms.rllib_private import RoundUpdateMixin
    from algorithms.sac import SACTorchLearner

    assert SACTorchLearner._update is RoundUpdateMixin._update
    mro = SACTorchLearner.__mro__
    assert next(c for c in mro[mro.index(RoundUpdateMixin) + 1 :] if "_update" in c.__dict__) is TorchLearner
    assert TRPOTorchLearner._get_optimizer_lr is OptimizerLrMixin._get_optimizer_lr


def test_rllib_calls_our_update_and_lr_hooks(ray_session, monkeypatch):
    """One TRPO iteration on CartPole with an ASGD critic optimizer: RLlib must reach
    own_update through _update, and read the optimizer's lr through _get_optimizer_lr
    (ASGD's param groups have no "lr", so RLlib's own reader would fail)."""
    calls = {"update": 0, "lr": 0}
    own_update = TRPOTorchLearner.own_update

    def counted_update(self, batch):
        calls["update"] += 1
        return own_update(self, batch)

    def counted_lr(optimizer):
        calls["lr"] += 1
        return current_lr(optimizer)

    monkeypatch.setattr(TRPOTorchLearner, "own_update", counted_update)
    monkeypatch.setattr(OptimizerLrMixin, "_get_optimizer_lr", staticmethod(counted_lr))
    config = (
        TRPOSettings(train_batch_size=64, n_critic_updates=1)
        .apply_to(TRPOConfig())
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .learners(learner_config_dict=optimizer_settings("asgd_adam", {"lr_min": 1e-4, "lr_max": 1e-3}))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = algo.train()["learners"][DEFAULT_MODULE_ID]
        assert calls["update"] >= 1 and calls["lr"] >= 1
        assert result["line_search_success"] in (0.0, 1.0)
        (name, optimizer), = local_learner(algo).get_optimizers_for_module(DEFAULT_MODULE_ID)
        assert name == "critic" and current_lr(optimizer) == 1e-3
        assert learner_module(algo) is local_learner(algo).module[DEFAULT_MODULE_ID]
    finally:
        algo.stop()


def test_rlmodule_forward_passes_dispatch_to_the_underscore_overrides(monkeypatch):
    from envs.cell_fate_env import CellFateEnv

    from algorithms.modules import MLPModule, model_config

    assert issubclass(MLPModule, RLModule)
    env = CellFateEnv({"target": "Mo", "observation": "flat"})
    module = MLPModule(observation_space=env.observation_space, action_space=env.action_space,
                       model_config=model_config(env.world, "steer", env.kinds, "mlp", {}))
    seen = []
    for name in ("_forward", "_forward_train"):
        original = getattr(MLPModule, name)
        monkeypatch.setattr(MLPModule, name, lambda self, batch, _o=original, _n=name, **kw: seen.append(_n) or _o(self, batch, **kw))
    obs, _ = env.reset(seed=0)
    batch = {Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs.items()}}
    module.forward_train(batch)
    module.forward_inference(batch)
    module.forward_exploration(batch)
    assert seen == ["_forward_train", "_forward", "_forward"]


def test_optuna_frozen_trial_id_addresses_a_running_trial():
    """tournament/engine/search.py: ``optuna.trial.Trial(study, frozen._trial_id)`` (to set a user
    attribute on a RUNNING trial) and ``storage.get_trial(frozen._trial_id)``."""
    import optuna
    from optuna.trial import TrialState

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    running = study.ask()
    (frozen,) = study.get_trials(deepcopy=False)
    assert frozen.state == TrialState.RUNNING and frozen._trial_id == running._trial_id
    optuna.trial.Trial(study, frozen._trial_id).set_user_attr("interrupted", True)
    study.tell(frozen.number, state=TrialState.FAIL)
    (after,) = study.get_trials(deepcopy=False)
    assert after.user_attrs == {"interrupted": True} and after.state == TrialState.FAIL
    assert storage.get_trial(frozen._trial_id).number == frozen.number


def test_ray_private_names_used_by_the_runner_and_the_cluster_tests():
    from ray._private import ray_constants, services
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)
    # Read while a node picks its address: what tournament.engine.ray_session._loopback_node_address relies on.
    assert "ray_constants.ENABLE_RAY_CLUSTER" in inspect.getsource(services.get_node_ip_address)
    assert hasattr(AuthenticationMode, "TOKEN") and callable(get_authentication_mode)


def test_rllib_names_the_sac_flat_replay_relies_on():
    """algorithms/rllib_private.sample_episodes and algorithms/sac.SACTorchLearner (flat replay)."""
    from ray.rllib.algorithms.dqn.dqn import DQN
    from ray.rllib.algorithms.dqn.dqn_learner import DQNLearner
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    params = inspect.signature(synchronous_parallel_sample).parameters
    assert {"worker_set", "concat", "sample_timeout_s", "_uses_new_env_runners", "_return_metrics"} <= set(params)
    assert "_uses_new_env_runners=True" in inspect.getsource(DQN._training_step_new_api_stack)
    # The target step runs only when env steps since the per-module mark reach the update freq:
    # a mark of +inf switches it off.
    source = inspect.getsource(DQNLearner.after_gradient_based_update)
    assert "timestep - self.last_update_ts_by_mid[" in source and ">= config.target_network_update_freq" in source
    # With torch_skip_nan_gradients=True RLlib steps without its per-parameter finiteness checks;
    # SACTorchLearner.apply_gradients makes the gradients finite first.
    assert "self.config.torch_skip_nan_gradients or all(" in inspect.getsource(TorchLearner.apply_gradients)
    # SACTorchLearner.compute_gradients backpropagates the sum in one pass and drops the
    # per-optimizer losses RLlib's loss stores for its own four passes.
    from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner as RLlibSAC

    assert "self._temp_losses.pop((module_id, optim_name" in inspect.getsource(RLlibSAC.compute_gradients)
    assert "self._temp_losses[(module_id, POLICY_LOSS_KEY)]" in inspect.getsource(RLlibSAC._compute_loss_for_module_discrete)
