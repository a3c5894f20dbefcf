"""LoRA_staged's convex_mode blend: the seed author's ``(1 - c) W + c alpha B A`` with W, A and
B trained in the convex stage; frozen_a (LoRA-FA) stays the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.common import learner_module
from algorithms.lora import LoRALinear, LoRASettings, plain_state, set_trainable, wrap_linear_layers
from algorithms.registry import algorithm_stages
from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError


def _hand_made_layer(c: float = 0.25, alpha: float = 3.0) -> tuple[LoRALinear, dict[str, np.ndarray]]:
    base = torch.nn.Linear(3, 2).double()
    values = {
        "W": np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]),
        "b": np.array([0.25, -0.5]),
        "A": np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]]),   # rank 2 x in 3
        "B": np.array([[0.5, -1.0], [2.0, 0.25]]),            # out 2 x rank 2
    }
    layer = LoRALinear(base, rank=2, alpha=alpha, generator=torch.Generator().manual_seed(0), blend=c)
    with torch.no_grad():
        base.weight.copy_(torch.from_numpy(values["W"]))
        base.bias.copy_(torch.from_numpy(values["b"]))
        layer.lora_A.copy_(torch.from_numpy(values["A"]))
        layer.lora_B.copy_(torch.from_numpy(values["B"]))
    return layer, values


def test_blended_forward_and_merge_equal_the_formula():
    c, alpha = 0.25, 3.0
    layer, v = _hand_made_layer(c, alpha)
    weight = (1 - c) * v["W"] + c * alpha * v["B"] @ v["A"]
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 4.0]])
    with torch.no_grad():
        got = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, x @ weight.T + v["b"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.merged_weight().detach().numpy(), weight, rtol=1e-12)
    # What the next stage starts from: the same weight under the plain key.
    merged = plain_state({f"lin.{k}": t for k, t in layer.state_dict().items()})
    assert set(merged) == {"lin.weight", "lin.bias"}
    np.testing.assert_allclose(merged["lin.weight"], weight, rtol=1e-12)
    np.testing.assert_allclose(merged["lin.bias"], v["b"], rtol=0)


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def test_blend_convex_stage_trains_w_a_and_b():
    module = _tiny()
    paths = wrap_linear_layers(module, rank=2, alpha=2.0, seed=0, blend=0.5)
    assert paths == ["0", "2"]
    set_trainable(module, "blend")
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {f"{i}.{leaf}" for i in ("0", "2") for leaf in ("base.weight", "base.bias", "lora_A", "lora_B")}
    # B starts at 0, which makes A's first gradient 0 (as in any LoRA); give B a value, as training would.
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.5)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    loss = module(torch.randn(8, 4)).pow(2).sum()
    loss.backward()
    opt.step()
    for name, p in module.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change"


def test_frozen_a_convex_stage_is_unchanged():
    module = _tiny()
    wrap_linear_layers(module, rank=2, alpha=2.0, seed=0)
    set_trainable(module, "convex")
    assert {n for n, p in module.named_parameters() if p.requires_grad} == {"0.lora_B", "2.lora_B"}
    assert all(not hasattr(m, "lora_blend") for m in module.modules() if isinstance(m, LoRALinear))
    assert LoRASettings.from_dict({}).convex_mode == "frozen_a"


def test_convex_mode_and_blend_c_are_validated():
    with pytest.raises(UserInputError) as err:
        LoRASettings.from_dict({"convex_mode": "blnd"})
    assert str(err.value) == "unknown LoRA_staged convex_mode 'blnd'; valid choices: frozen_a, blend"
    with pytest.raises(UserInputError, match=r"blend_c must be in \[0, 1\], got 1.5"):
        LoRASettings.from_dict({"convex_mode": "blend", "blend_c": 1.5})


@pytest.mark.usefixtures("ray_session")
def test_blend_stage_is_built_from_the_settings_and_hands_over_its_merged_weights():
    h = {"num_envs_per_env_runner": 4, "PPO": {"train_batch_size": 100, "minibatch_size": 50, "num_epochs": 1},
         "stages": {"pretrain": 0.5, "lora_convex": 0.25, "lora_nonconvex": 0.25},
         "convex_mode": "blend", "blend_c": 0.3}
    trial = TrialPlan(target="Mo", algorithm="LoRA_staged", module="mlp", env_steps=300, algo_hparams=h, seed=2)
    stages = algorithm_stages(trial)
    modes = [s.config.rl_module_spec.model_config.get("lora", {}).get("mode") for s in stages]
    assert modes == [None, "blend", "nonconvex"]
    algos = []
    try:
        for stage in stages:
            algos.append(stage.config.build_algo())
        pretrain, convex, nonconvex = (learner_module(a) for a in algos)
        stages[1].transfer(algos[0], algos[1])
        layers = [m for m in convex.modules() if isinstance(m, LoRALinear)]
        assert layers and all(float(m.lora_blend) == pytest.approx(0.3) for m in layers)
        for m in layers:
            assert m.base.weight.requires_grad and m.lora_A.requires_grad and m.lora_B.requires_grad
        # The pretrained weights arrived as W of the blend.
        plain = plain_state(pretrain.state_dict())
        for path in convex.lora_paths:
            np.testing.assert_allclose(convex.get_submodule(path).base.weight.detach().numpy(), plain[f"{path}.weight"])
        with torch.no_grad():
            for m in layers:
                m.lora_B.normal_(0, 0.05)
        expected = plain_state(convex.state_dict())
        stages[2].transfer(algos[1], algos[2])
        got = plain_state(nonconvex.state_dict())
        for k in expected:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-6, atol=1e-7)
    finally:
        for algo in algos:
            algo.stop()


@pytest.mark.parametrize("blend", [None, 0.5])
def test_the_weight_property_is_the_weight_forward_applies(blend):
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(6, 4), rank=2, alpha=2.0, generator=torch.Generator().manual_seed(1), blend=blend)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    layer.weight.sum().backward()
    assert layer.lora_A.grad is not None and layer.lora_B.grad is not None
