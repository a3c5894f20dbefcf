"""GNN and MLP RLModules: shapes, masking, value head, parameter groups, cross-world weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from algorithms.modules import MASKED_LOGIT, OBSERVATION, GNNModule, model_config, module_class
from envs.cell_fate_env import CellFateEnv
from envs.errors import UserInputError
from envs.network import BooleanNetwork
from envs.world import load_world, make_world


@pytest.fixture(scope="module")
def myeloid():
    return load_world("myeloid")


@pytest.fixture(scope="module")
def small_world():
    """Five genes: a toggle switch A -| B, B -| A with downstream markers and an input."""
    net = BooleanNetwork.from_rules(
        {"S": "S", "A": "(A | S) & !B", "B": "B & !A", "C": "A", "D": "B & !C"}, where="test"
    )
    return make_world(
        "toggle5",
        net,
        fates={"Afate": {"A": 1, "B": 0}, "Bfate": {"A": 0, "B": 1}},
        start_states={"start": ["A", "B"]},
        default_start="start",
    )


def build(world, task: str, kind: str, options: dict | None = None, seed: int = 0):
    env = CellFateEnv(
        {"world": world, "task": task, "target": world.fates[0] if task == "steer" else None, "observation": OBSERVATION[kind]}
    )
    torch.manual_seed(seed)
    cfg = model_config(world, task, env.kinds, kind, options)
    module = module_class(kind)(observation_space=env.observation_space, action_space=env.action_space, model_config=cfg)
    return env, module


def batch_of(env: CellFateEnv, n: int, seed: int = 0, actions_first: int = 0) -> dict:
    """n observations from episodes seeded seed.., after `actions_first` random valid actions."""
    rng = np.random.default_rng(seed)
    observations = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        for _ in range(actions_first):
            valid = np.flatnonzero(obs["action_mask"])
            obs, _, done, _, _ = env.step(int(rng.choice(valid)))
            if done:
                obs, _ = env.reset(seed=seed + i)
        observations.append(obs)
    return {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}}


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
@pytest.mark.parametrize("task", ["steer", "predict"])
def test_shapes_logits_values(myeloid, task, kind):
    env, module = build(myeloid, task, kind)
    batch = batch_of(env, 6)
    for forward in (module.forward_inference, module.forward_exploration, module.forward_train):
        logits = forward(batch)[Columns.ACTION_DIST_INPUTS]
        assert logits.shape == (6, env.action_space.n)
        assert torch.isfinite(logits).all()
    values = module.compute_values(batch)
    assert values.shape == (6,)
    assert torch.isfinite(values).all()


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
def test_mask_excludes_invalid_actions(myeloid, kind):
    env, module = build(myeloid, "steer", kind)
    # After two random perturbations (MAX_PERTURB 2) only 'no perturbation' is valid.
    batch = batch_of(env, 8, seed=3, actions_first=2)
    mask = batch[Columns.OBS]["action_mask"]
    assert (mask.sum(dim=1) < mask.shape[1]).all()
    logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    assert (logits[mask == 0] == MASKED_LOGIT).all()
    assert (logits[mask == 1] > MASKED_LOGIT / 2).all()
    dist = module.get_exploration_action_dist_cls().from_logits(logits)
    samples = torch.stack([dist.sample() for _ in range(200)], dim=1)
    assert torch.gather(mask, 1, samples).bool().all()
    # A partially used budget: pinned genes only are excluded.
    batch1 = batch_of(env, 8, seed=5, actions_first=1)
    mask1 = batch1[Columns.OBS]["action_mask"]
    probs = torch.softmax(module.forward_inference(batch1)[Columns.ACTION_DIST_INPUTS], dim=-1)
    assert (probs[mask1 == 0] == 0).all() and (probs[mask1 == 1] > 0).all()


def test_masked_logits_get_no_gradient(myeloid):
    env, module = build(myeloid, "steer", "gnn")
    batch = batch_of(env, 4, seed=1, actions_first=2)
    mask = batch[Columns.OBS]["action_mask"]
    logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    logits[mask == 0].sum().backward()
    grads = [p.grad for p in module.actor_parameters() if p.grad is not None]
    assert grads and all((g == 0).all() for g in grads)


@pytest.mark.parametrize("conv", ["gat", "gcn", "sage"])
@pytest.mark.parametrize("backend", ["sparse", "dense"])
def test_gnn_weights_run_on_a_world_of_another_size(myeloid, small_world, conv, backend):
    options = {"conv": conv, "backend": backend, "hidden": 16, "heads": 2}
    env_big, big = build(myeloid, "steer", "gnn", options, seed=1)
    env_small, small = build(small_world, "steer", "gnn", options, seed=2)
    state = big.get_state()
    assert set(state) == set(small.get_state())  # no world-sized parameter anywhere
    small.set_state(state)
    for key, value in small.get_state().items():
        np.testing.assert_array_equal(value, state[key])
    logits = small.forward_inference(batch_of(env_small, 3))[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (3, 1 + 5 * 2)
    assert torch.isfinite(logits).all()


def test_predict_head_transfers_across_fate_counts(myeloid, small_world):
    _, big = build(myeloid, "predict", "gnn")
    env_small, small = build(small_world, "predict", "gnn")
    small.set_state(big.get_state())
    logits = small.forward_inference(batch_of(env_small, 2))[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (2, len(small_world.fate_labels))


def test_dense_and_sparse_backends_agree_on_gcn(myeloid):
    env, sparse = build(myeloid, "steer", "gnn", {"conv": "gcn", "backend": "sparse"}, seed=0)
    _, dense = build(myeloid, "steer", "gnn", {"conv": "gcn", "backend": "dense"}, seed=0)
    dense.set_state(sparse.get_state())  # GCNConv and DenseGCNConv name their weights alike
    batch = batch_of(env, 4, actions_first=1)
    a = sparse.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    b = dense.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["gnn", "mlp"])
def test_parameter_groups_split_actor_and_critic(myeloid, kind):
    env, module = build(myeloid, "steer", kind, {"q_heads": 2})
    groups = module.trainable_groups()
    ids = {name: {id(p) for p in params} for name, params in groups.items()}
    assert set(ids) == {"actor", "critic", "q0", "q1"}
    names = list(ids)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not ids[a] & ids[b], (a, b)
    assert set().union(*ids.values()) == {id(p) for p in module.parameters()}
    # The actor's logits do not depend on the critic or Q parameters.
    batch = batch_of(env, 4)
    module.action_logits(batch).sum().backward()
    assert all(p.grad is None for p in groups["critic"] + groups["q0"])
    assert any(p.grad is not None for p in groups["actor"])
    q = module.compute_q_values(batch, index=0)
    assert q.shape == (4, env.action_space.n)
    module.make_target_networks()
    target = module.forward_target(batch)
    torch.testing.assert_close(target, module.compute_q_values(batch))


def test_shared_encoder_passes_embeddings(myeloid):
    env, module = build(myeloid, "steer", "gnn", {"share_encoder": True})
    assert module.share_encoder and module.vf_encoder is None
    batch = batch_of(env, 3)
    out = module.forward_train(batch)
    assert out[Columns.EMBEDDINGS].shape == (3, 64)
    torch.testing.assert_close(module.compute_values(batch, out[Columns.EMBEDDINGS]), module.compute_values(batch))


def test_bad_module_options_are_user_errors(myeloid):
    with pytest.raises(UserInputError, match="conv"):
        model_config(myeloid, "steer", ("knockout",), "gnn", {"conv": "gin"})
    with pytest.raises(UserInputError, match="hiden"):
        model_config(myeloid, "steer", ("knockout",), "gnn", {"hiden": 3})
    with pytest.raises(UserInputError, match="heads"):
        model_config(myeloid, "steer", ("knockout",), "gnn", {"conv": "gat", "hidden": 10, "heads": 3})
    with pytest.raises(UserInputError, match="module"):
        model_config(myeloid, "steer", ("knockout",), "cnn")


@pytest.mark.parametrize("share_encoder", [True, False])
def test_inference_only_module_keeps_the_actor(myeloid, share_encoder):
    env, full = build(myeloid, "steer", "gnn", {"share_encoder": share_encoder})
    cfg = full.model_config
    lean = GNNModule(observation_space=env.observation_space, action_space=env.action_space, inference_only=True, model_config=cfg)
    assert not hasattr(lean, "vf_head") and getattr(lean, "vf_encoder", None) is None
    assert sum(p.numel() for p in lean.parameters()) == sum(p.numel() for p in full.actor_parameters())
    lean.set_state(full.get_state(inference_only=True))
    batch = batch_of(env, 3)
    torch.testing.assert_close(
        lean.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], full.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    )


@pytest.mark.parametrize("task", ["steer", "predict"])
def test_split_first_layer_of_the_heads_equals_the_concatenated_input(myeloid, task):
    """The heads apply their first layer to h_i, g (and the fate signature) separately; the
    result must be the MLP of the concatenation, as the module docstring defines it."""
    env, module = build(myeloid, task, "gnn", seed=3)
    batch = batch_of(env, 5, actions_first=1)
    enc = module.pi_encoder(batch[Columns.OBS])
    head = module.pi_head
    b, n, h = enc.nodes.shape
    ctx = torch.cat([enc.nodes, enc.pooled.unsqueeze(1).expand(b, n, h)], dim=-1)
    if task == "steer":
        expected = torch.cat([head.stay(enc.pooled), head.node(ctx).reshape(b, -1)], dim=-1)
    else:
        f = head.signatures.shape[0]
        feats = torch.cat([ctx.unsqueeze(1).expand(b, f, n, 2 * h), head.signatures.unsqueeze(0).expand(b, f, n, 3)], dim=-1)
        expected = torch.cat([head.node(feats).squeeze(-1).mean(dim=-1), head.other(enc.pooled)], dim=-1)
    torch.testing.assert_close(head(enc), expected, rtol=1e-5, atol=1e-6)
