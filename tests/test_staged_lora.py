"""Multi-stage algorithms: TRPO_to_PPO / PPO_to_TRPO weight hand-over, one curve, checkpoints
in either stage; LoRA adapters, their stages and what each stage may change."""

from __future__ import annotations

import pytest
import torch

from algorithms.common import learner_module, local_learner
from algorithms.registry import algorithm_stages
from algorithms.staged import stage_plan, transfer_weights
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError

FAST = {"num_envs_per_env_runner": 4}


pytestmark = pytest.mark.usefixtures("ray_session")


def staged_trial(algorithm: str = "TRPO_to_PPO", module: str = "mlp", **hparams) -> TrialPlan:
    h = {**FAST, "first_stage_share": 0.25, "PPO": {"minibatch_size": 50, "num_epochs": 1}, "TRPO": {"n_critic_updates": 1}}
    h.update(hparams)
    return TrialPlan(target="Mo", algorithm=algorithm, module=module, env_steps=400, algo_hparams=h, seed=1)


def module_state(algo) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v).clone() for k, v in learner_module(algo).get_state().items()}


# ---- TRPO_to_PPO / PPO_to_TRPO --------------------------------------------------------------


def test_stage_plans_and_their_errors():
    assert stage_plan("TRPO_to_PPO", {}) == [("TRPO", 0.01), ("PPO", 0.99)]
    assert stage_plan("PPO_to_TRPO", {"first_stage_share": 0.2}) == [("PPO", 0.2), ("TRPO", 0.8)]
    assert stage_plan("TRPO_to_PPO", {"stages": [["PPO", 0.5], ["TRPO", 0.5]]}) == [("PPO", 0.5), ("TRPO", 0.5)]
    with pytest.raises(UserInputError, match="SAC"):
        stage_plan("TRPO_to_PPO", {"stages": [["SAC", 0.5], ["PPO", 0.5]]})
    with pytest.raises(UserInputError):
        stage_plan("TRPO_to_PPO", {"first_stage_share": 1.5})
    with pytest.raises(UserInputError, match="sum to 1"):
        bad = {"stages": [["TRPO", 0.3], ["PPO", 0.3]]}
        algorithm_stages(TrialPlan(target="Mo", algorithm="TRPO_to_PPO", module="mlp", algo_hparams=bad))


@pytest.mark.parametrize("module", ["mlp", "gnn"])
def test_transfer_moves_every_weight(module):
    stages = algorithm_stages(staged_trial(module=module))
    assert [s.name for s in stages] == ["TRPO", "PPO"]
    # The TRPO stage samples its whole 25% share (100 steps) in one batch.
    assert stages[0].config.train_batch_size_per_learner == 100
    first = stages[0].config.build_algo()
    second = stages[1].config.build_algo()
    try:
        first.train()
        trained, fresh = module_state(first), module_state(second)
        assert any(not torch.equal(trained[k], fresh[k]) for k in trained)
        keys = transfer_weights(first, second)
        assert set(keys) == set(trained)
        after = module_state(second)
        for k in trained:
            torch.testing.assert_close(after[k], trained[k], rtol=0, atol=0)
    finally:
        first.stop()
        second.stop()


def test_transfer_refuses_modules_with_other_keys():
    small = algorithm_stages(staged_trial())[0].config.build_algo()
    deeper = TrialPlan(target="Mo", algorithm="PPO", module="mlp", module_options={"layers": 3}, algo_hparams=dict(FAST))
    other = algorithm_stages(deeper)[0].config.build_algo()
    try:
        with pytest.raises(ValueError, match="differ"):
            transfer_weights(small, other)
    finally:
        small.stop()
        other.stop()


@pytest.mark.parametrize("algorithm", ["TRPO_to_PPO", "PPO_to_TRPO"])
def test_staged_trial_one_curve_and_resume_in_either_stage(algorithm, tmp_path):
    config = staged_trial(algorithm)
    runner = TrialRunner(config)
    first_name, second_name = [s.name for s in runner.stages]
    results = []
    try:
        results.append(runner.train_iteration())
        assert results[-1]["stage"] == first_name
        runner.save(str(tmp_path / "first"))
        first_weights = module_state(runner.algo)
        while not runner.done:
            results.append(runner.train_iteration())
            if results[-1]["stage"] == second_name and not (tmp_path / "second").exists():
                runner.save(str(tmp_path / "second"))
                second_weights = module_state(runner.algo)
                second_steps = runner.env_steps
    finally:
        runner.stop()
    steps = [r["env_steps"] for r in results]
    assert steps == sorted(steps) and steps[-1] >= config.env_steps
    names = [r["stage"] for r in results]
    assert names[0] == first_name and names[-1] == second_name
    assert names == sorted(names, key=[first_name, second_name].index)  # one switch, no way back

    resumed = TrialRunner(config)
    try:
        resumed.restore(str(tmp_path / "second"))
        assert resumed.stage.name == second_name and resumed.env_steps == second_steps
        for k, v in module_state(resumed.algo).items():
            torch.testing.assert_close(v, second_weights[k], rtol=0, atol=0)
        resumed.restore(str(tmp_path / "first"))
        assert resumed.stage.name == first_name
        for k, v in module_state(resumed.algo).items():
            torch.testing.assert_close(v, first_weights[k], rtol=0, atol=0)
        again = resumed.train_iteration()
        assert again["stage"] in (first_name, second_name) and not again["nan_loss"]
    finally:
        resumed.stop()


# ---- LoRA -------------------------------------------------------------------------------------

import pickle  # noqa: E402

import numpy as np  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

from algorithms.lora import LoRALinear, plain_state, wrap_linear_layers  # noqa: E402
from algorithms.modules import OBSERVATION, model_config, module_class  # noqa: E402
from envs.cell_fate_env import CellFateEnv  # noqa: E402
from envs.world import load_world  # noqa: E402

LORA_PPO = {"train_batch_size": 100, "minibatch_size": 50, "num_epochs": 1}


def test_lora_linear_starts_as_base_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(5, 3)
    layer = LoRALinear(base, rank=2, alpha=3.0, generator=torch.Generator().manual_seed(1))
    x = torch.randn(7, 5)
    torch.testing.assert_close(layer(x), base(x), rtol=0, atol=0)
    with torch.no_grad():
        layer.lora_B.normal_()
    expected_w = base.weight + 1.5 * layer.lora_B @ layer.lora_A
    torch.testing.assert_close(layer.merged_weight(), expected_w)
    torch.testing.assert_close(layer(x), x @ expected_w.T + base.bias)
    assert not torch.allclose(layer(x), base(x))
    merged = plain_state({"l.base.weight": base.weight, "l.base.bias": base.bias, **{f"l.{k}": v for k, v in
                          [("lora_A", layer.lora_A), ("lora_B", layer.lora_B), ("lora_scale", layer.lora_scale)]}})
    assert set(merged) == {"l.weight", "l.bias"}
    np.testing.assert_allclose(merged["l.weight"], expected_w.detach().numpy(), rtol=1e-6)


def _module_and_obs(kind: str, seed: int = 0):
    world = load_world("myeloid")
    env = CellFateEnv({"world": world, "target": "Mo", "observation": OBSERVATION[kind]})
    torch.manual_seed(seed)
    cfg = model_config(world, "steer", env.kinds, kind, {})
    module = module_class(kind)(observation_space=env.observation_space, action_space=env.action_space, model_config=cfg)
    rng = np.random.default_rng(seed)
    observations = []
    for i in range(16):
        obs, _ = env.reset(seed=i)
        for _ in range(i % 3):
            obs, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            if done:
                obs, _ = env.reset(seed=i)
        observations.append(obs)
    batch = {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}}
    return module, batch


def _outputs(module, batch):
    with torch.no_grad():
        return module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], module.compute_values(batch)


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
def test_wrapping_keeps_the_policy_and_reaches_gnn_convolutions(kind):
    module, batch = _module_and_obs(kind)
    logits, values = _outputs(module, batch)
    paths = wrap_linear_layers(module, rank=3, alpha=6.0, seed=0)
    if kind == "gnn":
        assert any(".conv_pos.0.lin" in p for p in paths) and any(".conv_neg.1.lin" in p for p in paths)
    assert any(p.startswith("pi_") for p in paths) and any(p.startswith("vf_") for p in paths)
    new_logits, new_values = _outputs(module, batch)
    torch.testing.assert_close(new_logits, logits, rtol=0, atol=0)
    torch.testing.assert_close(new_values, values, rtol=0, atol=0)
    only_actor = wrap_linear_layers(_module_and_obs(kind)[0], rank=2, alpha=2.0, patterns=["pi_*"])
    assert only_actor and all(p.startswith("pi_") for p in only_actor)


@pytest.fixture(scope="module")
def pretrained_gnn(tmp_path_factory):
    """A plain GNN's weights as an RLlib module_state.pkl, and its outputs on a batch."""
    module, batch = _module_and_obs("gnn", seed=3)
    path = tmp_path_factory.mktemp("pretrained") / "module_state.pkl"
    with open(path, "wb") as fh:
        pickle.dump({k: v.numpy() for k, v in module.state_dict().items()}, fh)
    return str(path), batch, _outputs(module, batch)


def lora_trial(pretrained: str | None, stages: dict, env_steps: int = 300, **extra) -> TrialPlan:
    h = {**FAST, "stages": stages, "PPO": dict(LORA_PPO), **extra}
    if pretrained:
        h["pretrained"] = pretrained
    return TrialPlan(target="Mo", algorithm="LoRA_staged", module="gnn", env_steps=env_steps, algo_hparams=h, seed=2)


def _snapshot(module) -> tuple[dict[str, torch.Tensor], set[str]]:
    named = dict(module.named_parameters())
    return {n: p.detach().clone() for n, p in named.items()}, {n for n, p in named.items() if p.requires_grad}


def test_each_lora_stage_trains_only_its_parameters(pretrained_gnn):
    path, batch, (logits0, values0) = pretrained_gnn
    runner = TrialRunner(lora_trial(path, {"lora_convex": 1 / 3, "lora_nonconvex": 1 / 3, "full": 1 / 3}))
    handed_over = {}
    for stage in runner.stages[1:]:
        # Record each stage's parameters as they are right after the hand-over.
        def recording(source, target, transfer=stage.transfer):
            transfer(source, target)
            handed_over["state"] = _snapshot(learner_module(target))

        stage.transfer = recording
    try:
        # Right after wrapping, the policy is the pretrained one (B = 0).
        logits, values = _outputs(runner.module(), batch)
        torch.testing.assert_close(logits, logits0, rtol=0, atol=0)
        torch.testing.assert_close(values, values0, rtol=0, atol=0)
        before, trainable = _snapshot(runner.module())
        seen = set()
        while not runner.done:
            result = runner.train_iteration()
            assert not result["nan_loss"]
            if "state" in handed_over:
                before, trainable = handed_over.pop("state")
            stage = result["stage"]
            seen.add(stage)
            module = runner.module()
            registered = {id(p) for _, opt in local_learner(runner.algo).get_optimizers_for_module("default_policy")
                          for g in opt.param_groups for p in g["params"]}
            assert registered == {id(p) for n, p in module.named_parameters() if n in trainable}
            leaves = {n.rsplit(".", 1)[-1] for n in trainable}
            if stage == "lora_convex":
                assert leaves == {"lora_B"}
            elif stage == "lora_nonconvex":
                assert leaves == {"lora_A", "lora_B"}
            else:
                assert stage == "full" and trainable == set(before)
            after, _ = _snapshot(module)
            for name in set(before) - trainable:
                torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
            assert any(not torch.equal(after[n], before[n]) for n in trainable)
            before = after
        assert seen == {"lora_convex", "lora_nonconvex", "full"}
    finally:
        runner.stop()


def test_pretrain_stage_and_hand_overs_keep_the_policy():
    """Without a checkpoint: pretrain -> convex -> nonconvex -> full; each hand-over leaves
    the policy's outputs unchanged and the full stage holds W + s*B*A."""
    stages = algorithm_stages(lora_trial(None, {"pretrain": 0.4, "lora_convex": 0.2, "lora_nonconvex": 0.2, "full": 0.2}))
    assert [s.name for s in stages] == ["pretrain", "lora_convex", "lora_nonconvex", "full"]
    _, batch = _module_and_obs("gnn")
    algos = []
    try:
        previous = None
        for i, stage in enumerate(stages):
            algo = stage.config.build_algo()
            algos.append(algo)
            module = learner_module(algo)
            if previous is not None:
                prev_module = learner_module(previous)
                stage.transfer(previous, algo)
                torch.testing.assert_close(_outputs(module, batch)[0], _outputs(prev_module, batch)[0], rtol=1e-5, atol=1e-4)
                torch.testing.assert_close(_outputs(module, batch)[1], _outputs(prev_module, batch)[1], rtol=1e-5, atol=1e-5)
            if stage.name == "lora_nonconvex":
                # Give the adapters values, as training would, before merging.
                with torch.no_grad():
                    for name, p in module.named_parameters():
                        if name.endswith("lora_B") or name.endswith("lora_A"):
                            p.normal_(0, 0.05)
                expected = plain_state(module.state_dict())
            if stage.name == "full":
                got = {k: v.detach().numpy() for k, v in module.state_dict().items()}
                assert set(got) == set(expected)
                for k in expected:
                    np.testing.assert_allclose(got[k], expected[k], rtol=1e-6, atol=1e-7)
                assert not any(k.endswith("lora_A") for k in got)
            previous = algo
    finally:
        for algo in algos:
            algo.stop()


def test_lora_settings_errors(pretrained_gnn):
    path = pretrained_gnn[0]
    with pytest.raises(UserInputError, match="pretrain"):
        algorithm_stages(lora_trial(path, {"pretrain": 0.5, "lora_convex": 0.5}))
    with pytest.raises(UserInputError, match="stage"):
        algorithm_stages(lora_trial(None, {"pretrain": 0.5, "lora_convx": 0.5}))
    with pytest.raises(UserInputError, match="does not exist"):
        algorithm_stages(lora_trial("/nonexistent/ckpt", {"lora_convex": 1.0}))
    stages = algorithm_stages(lora_trial(path, {"lora_convex": 1.0}, layers=["no_such_layer*"]))
    with pytest.raises(Exception, match="match no linear layer"):
        stages[0].config.build_algo()
