"""The whole-model switch rules of optim.asgd: the published rule (paper) against a
hand computation of the author's formula, and the earlier global_count rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optim.asgd import SWITCH_RULES, ASGDAdam, ASGDAmsgrad
from optim.registry import make_optimizer


def _gradients(steps: int, shapes: list[tuple[int, ...]], seed: int = 7) -> list[list[np.ndarray]]:
    """A seeded gradient sequence, sparse like the seed's data (about half the entries zero)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        out.append([rng.normal(size=s) * (rng.random(size=s) < 0.5) * rng.choice([0.1, 1.0, 10.0]) for s in shapes])
    return out


def _paper_by_hand(x0, grads, lr_min, lr_max, beta1, beta2, eps, amsgrad):
    """The published notebook's ASGDAdam / ASGDAMSGrad step, written out in numpy.

    Per tensor: n = b1 n + (1-b1) g; H = b2 H + (1-b2) g^2; (AMSGrad: H_hat = max(H_hat, H));
    f_min = (sign(mean|H| - mean H) + 1) / 2; f_max = (sign(mean H - mean|H|) + 1) / 2;
    votes += (f != 0); lr = lr_min if votes_max < votes_min else lr_max;
    x -= lr * n / (sqrt(H or H_hat) + eps).
    """
    xs = [x.copy() for x in x0]
    n = [np.zeros_like(x) for x in x0]
    h = [np.zeros_like(x) for x in x0]
    h_hat = [np.zeros_like(x) for x in x0]
    trace, lrs = [], []
    for step_grads in grads:
        votes_min = votes_max = 0
        directions = []
        for i, g in enumerate(step_grads):
            n[i] = beta1 * n[i] + (1 - beta1) * g
            h[i] = beta2 * h[i] + (1 - beta2) * g * g
            h_hat[i] = np.maximum(h_hat[i], h[i])
            mean_abs, mean = np.mean(np.abs(h[i])), np.mean(h[i])
            f_min = (np.sign(mean_abs - mean) + 1) / 2
            f_max = (np.sign(mean - mean_abs) + 1) / 2
            votes_min += int(f_min != 0)
            votes_max += int(f_max != 0)
            directions.append(n[i] / (np.sqrt(h_hat[i] if amsgrad else h[i]) + eps))
        lr = lr_min if votes_max < votes_min else lr_max
        for i, d in enumerate(directions):
            xs[i] = xs[i] - lr * d
        trace.append([x.copy() for x in xs])
        lrs.append(lr)
    return trace, lrs


@pytest.mark.parametrize("cls, amsgrad", [(ASGDAdam, False), (ASGDAmsgrad, True)])
def test_paper_rule_matches_hand_computation_of_the_published_update(cls, amsgrad):
    shapes = [(3, 4), (5,)]
    grads = _gradients(50, shapes)
    rng = np.random.default_rng(0)
    x0 = [rng.normal(size=s) for s in shapes]
    lr_min, lr_max, betas, eps = 1e-3, 1e-2, (0.9, 0.999), 1e-8
    expected, expected_lrs = _paper_by_hand(x0, grads, lr_min, lr_max, *betas, eps, amsgrad)

    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in x0]
    opt = cls(params, lr_min=lr_min, lr_max=lr_max, betas=betas, eps=eps, switch="paper")
    for t, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        for p, want in zip(params, expected[t]):
            np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-14)
        # The code's consequence: the two means are equal, each tensor votes once each way, lr_max wins.
        stats = opt.last_switch_stats
        assert (stats["votes_lr_min"], stats["votes_lr_max"]) == (2, 2)
        assert stats["frac_lr_max"] == 1.0 and stats["lr_mean"] == lr_max and stats["numel"] == 17
    assert expected_lrs == [lr_max] * 50
    # No bias correction: the first step of a coordinate with a gradient is about sqrt(1000) / 10 = 3.16 lr_max.
    g0 = grads[0][1]
    first = _paper_by_hand(x0, grads[:1], lr_min, lr_max, *betas, eps, amsgrad)[0][0][1] - x0[1]
    hit = g0 != 0
    np.testing.assert_allclose(np.abs(first[hit]), lr_max * 0.1 / np.sqrt(0.001), rtol=1e-3)  # eps aside


# beta2 = 0.5 keeps every second moment exact in binary, so "grew" is decided exactly.
# Two groups with their own lr pairs; a = 2 coordinates, b = 2 coordinates.
_GLOBAL_GRADS = [
    # step 1: a grows twice, b[0] grows, b[1] has no gradient (v stays 0): 3 grew vs 1 -> lr_min
    ([1.0, 1.0], [1.0, 0.0]),
    # step 2: only b[1] grows: 1 vs 3 -> lr_max
    ([0.0, 0.0], [0.0, 2.0]),
    # step 3: a grows twice, b shrinks twice: a tie is not "more grew" -> lr_max
    ([1.0, 1.0], [0.0, 0.0]),
    # step 4: a grows twice and b[0] grows (0.125 -> 0.5625): 3 vs 1 -> lr_min
    ([1.0, 1.0], [1.0, 0.0]),
]
_GLOBAL_USES_MIN = [True, False, False, True]
_GLOBAL_VOTES = [(3, 1), (1, 3), (2, 2), (3, 1)]


@pytest.mark.parametrize("cls", [ASGDAdam, ASGDAmsgrad])
def test_global_count_switches_the_whole_model_at_once(cls):
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    lrs = {"a": (0.1, 1.0), "b": (0.01, 0.5)}
    opt = cls(
        [{"params": [a], "lr_min": lrs["a"][0], "lr_max": lrs["a"][1]},
         {"params": [b], "lr_min": lrs["b"][0], "lr_max": lrs["b"][1]}],
        betas=(0.9, 0.5), eps=1e-8, switch="global_count", track_lr_usage=True,
    )
    m = {"a": np.zeros(2), "b": np.zeros(2)}
    v = {"a": np.zeros(2), "b": np.zeros(2)}
    vmax = {"a": np.zeros(2), "b": np.zeros(2)}
    used_max_before = {"a": np.zeros(2), "b": np.zeros(2)}
    for t, (ga, gb) in enumerate(_GLOBAL_GRADS, start=1):
        before = {"a": a.detach().numpy().copy(), "b": b.detach().numpy().copy()}
        a.grad = torch.tensor(ga, dtype=torch.float64)
        b.grad = torch.tensor(gb, dtype=torch.float64)
        opt.step()
        use_min = _GLOBAL_USES_MIN[t - 1]
        stats = opt.last_switch_stats
        assert (stats["votes_lr_min"], stats["votes_lr_max"]) == _GLOBAL_VOTES[t - 1]
        assert stats["frac_lr_max"] == (0.0 if use_min else 1.0)
        assert stats["groups"] == {0: stats["frac_lr_max"], 1: stats["frac_lr_max"]}
        for name, p, g in (("a", a, ga), ("b", b, gb)):
            # Every coordinate of every group took the same branch this step ...
            used_max = opt.lr_max_steps[p].numpy()
            np.testing.assert_array_equal(used_max - used_max_before[name], np.full(2, 0 if use_min else 1))
            used_max_before[name] = used_max.copy()
            # ... with its own group's lr, in the bias-corrected Adam / AMSGrad update.
            g = np.asarray(g)
            m[name] = 0.9 * m[name] + 0.1 * g
            v[name] = 0.5 * v[name] + 0.5 * g * g
            vmax[name] = np.maximum(vmax[name], v[name])
            second = vmax[name] if cls is ASGDAmsgrad else v[name]
            lr = lrs[name][0] if use_min else lrs[name][1]
            step = lr * (m[name] / (1 - 0.9**t)) / (np.sqrt(second / (1 - 0.5**t)) + 1e-8)
            np.testing.assert_allclose(before[name] - p.detach().numpy(), step, rtol=1e-12, atol=1e-15)


def test_global_count_counts_on_v_not_its_running_max():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = ASGDAmsgrad([x], lr_min=0.1, lr_max=1.0, betas=(0.9, 0.5), switch="global_count")
    uses = []
    # v: 0 -> 2 (grew) -> 1 (shrank) -> 1.625 (grew, yet still below max(v) = 2)
    for g in (2.0, 0.0, 1.5):
        x.grad = torch.full((3,), g, dtype=torch.float64)
        opt.step()
        uses.append(opt.last_switch_stats["frac_lr_max"] == 0.0)
    assert uses == [True, False, True]


def test_unknown_switch_rule_lists_every_choice():
    assert SWITCH_RULES == ("mean", "median", "threshold", "global_count", "paper")
    msg = "unknown switch rule 'global'; valid choices: mean, median, threshold, global_count, paper"
    for build in (
        lambda: ASGDAdam([torch.zeros(2, requires_grad=True)], switch="global"),
        lambda: make_optimizer("asgd_amsgrad", [torch.zeros(2, requires_grad=True)], {"lr": 1e-3, "switch": "global"}),
    ):
        with pytest.raises(ValueError) as err:
            build()
        assert str(err.value) == msg


def test_whole_model_rule_cannot_mix_with_a_per_group_rule():
    with pytest.raises(ValueError, match="every group must use the same one"):
        ASGDAdam([{"params": [torch.zeros(2, requires_grad=True)]},
                  {"params": [torch.zeros(2, requires_grad=True)], "switch": "paper"}])


def test_whole_model_rules_skip_params_without_grad_and_build_from_the_registry():
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = make_optimizer("asgd_adam", [a, b], {"lr_min": 1e-4, "lr_max": 1e-3, "switch": "paper"})
    opt.step()
    assert opt.last_switch_stats["numel"] == 0 and opt.last_switch_stats["votes_lr_min"] == 0
    a.grad = torch.ones(2)
    opt.step()
    assert opt.last_switch_stats["numel"] == 2 and b.detach().abs().sum() == 0
    # A state dict round-trips like any torch optimizer's.
    clone = make_optimizer("asgd_adam", [a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()],
                           {"lr_min": 1e-4, "lr_max": 1e-3, "switch": "paper"})
    clone.load_state_dict(opt.state_dict())
    assert clone.param_groups[0]["switch"] == "paper"
