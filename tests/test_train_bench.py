"""The train bench compares like with like: both sides receive the same settings (no timings checked)."""

from __future__ import annotations

import pytest

pytest.importorskip("stable_baselines3")

from tournament.cli.bench import train_bench as tb  # noqa: E402

pytestmark = pytest.mark.usefixtures("ray_session")

LR = 3e-4


@pytest.fixture(scope="module")
def sb3_models():
    return {name: tb.build_sb3(name, None, LR) for name in tb.ALGORITHMS}


@pytest.mark.parametrize("module", ["gnn", "mlp"])
@pytest.mark.parametrize("algorithm", tb.ALGORITHMS)
def test_both_sides_receive_the_same_settings(algorithm, module, sb3_models):
    model = sb3_models[algorithm]
    runner = tb.build_ours(algorithm, module, 64, None, LR)
    try:
        ours = tb.ours_received(runner)
        cfg = runner.algo.config
    finally:
        runner.stop()
    sb3 = tb.sb3_received(model)
    tb.check_equal(ours, sb3, f"{algorithm} {module}")
    assert {k: ours[k] for k in tb.SHARED} == {k: sb3[k] for k in tb.SHARED}

    s = tb.settings_of(algorithm)
    # Against the SB3 model's own attributes and our built RLlib config, not only the summaries.
    assert model.n_envs == cfg.num_envs_per_env_runner == s.num_envs_per_env_runner
    assert ours["threads"] == sb3["threads"] == 1
    hidden, layers = tb.module_widths(module)
    assert cfg.rl_module_spec.model_config["hidden"] == hidden
    if algorithm == "PPO":
        assert model.n_steps * model.n_envs == cfg.train_batch_size_per_learner == s.train_batch_size
        assert model.batch_size == cfg.minibatch_size == s.minibatch_size
        assert model.n_epochs == cfg.num_epochs == s.num_epochs
        assert model.policy.net_arch == {"pi": [hidden] * layers, "vf": [hidden] * (layers + 1)}
    elif algorithm == "A2C":
        assert model.n_steps * model.n_envs == cfg.train_batch_size_per_learner == s.train_batch_size
        assert cfg.num_epochs == 1 and cfg.minibatch_size is None  # one step on the whole batch, as SB3's A2C
        assert not model.policy.optimizer.__class__.__name__.startswith("RMS")
    else:
        assert type(model).__name__ == "DQN"
        assert model.batch_size == cfg.train_batch_size_per_learner == s.batch_size
        assert model.buffer_size == s.buffer_size and model.learning_starts == s.learning_starts
        # One gradient step per env step on both sides: SB3 counts train_freq in vectorised steps.
        assert model.gradient_steps / (model.train_freq.frequency * model.n_envs) == s.gradient_steps / s.train_freq
        assert ours["updates_per_step"] == 1.0
        assert list(model.policy.net_arch) == [hidden] * layers


def test_different_settings_are_refused():
    ours = {k: 1 for k in tb.SHARED}
    with pytest.raises(AssertionError, match="n_envs"):
        tb.check_equal(ours, {**ours, "n_envs": 32}, "PPO mlp")


def test_rows_carry_both_sides_settings_and_alternate():
    rows = tb.bench_train(env_steps=256, modules=("mlp",), algorithms=("A2C",), repetitions=2)
    (row,) = rows
    assert row["algorithm"] == "A2C" and row["module"] == "mlp" and row["repetitions"] == 2
    assert row["n_envs"] == tb.settings_of("A2C").num_envs_per_env_runner
    assert row["ratio_vs_sb3"] == pytest.approx(row["steps_per_s"] / row["sb3_steps_per_s"], rel=0.01)
    assert len(row["ratio_per_rep"].split()) == 2
    assert "DummyVecEnv x32" in row["sb3_settings"] and "BatchedCellFateEnv x32" in row["ours_settings"]


def test_quick_kwargs_still_fit():
    import inspect

    from tournament.cli.bench_cmd import BENCHES

    module, func, quick = BENCHES["train"]
    assert (module, func) == ("tournament.cli.bench.train_bench", "bench_train")
    params = inspect.signature(tb.bench_train).parameters
    assert set(quick) <= set(params)
    assert params["sac_env_steps"].default is None  # derived from env_steps: 512 at 20000, 256 for --quick


def test_shared_gnn_variant_has_one_encoder_and_says_so():
    runner = tb.build_ours("PPO", "gnn_shared", 64, None, LR)
    try:
        from algorithms.common import local_learner

        module = local_learner(runner.algo).module["default_policy"]
        text = tb.ours_description(runner, tb.ours_received(runner))
    finally:
        runner.stop()
    assert module.vf_encoder is None and "one encoder for actor and critic" in text
    assert tb.modules_of("SAC", tuple(tb.MODULE_VARIANTS)) == ["gnn", "mlp"]


def test_unknown_module_variant_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="gnn_shared"):
        tb.bench_train(modules=("gnn_sharde",))
