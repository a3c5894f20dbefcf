"""RLlib side of the tournament: GNN / MLP RLModules, learners with our optimizers, trials.

Entry points: ``algorithms.trial_plan.TrialPlan`` (one trial as plain data, importable without
torch or RLlib), ``algorithms.trial.TrialRunner`` (one trial to its budget) and
``algorithms.registry.build_algorithm_config`` (one RLlib config). The package imports nothing
itself, so the light modules stay light.
"""
