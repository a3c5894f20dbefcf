"""The tournament engine: spec, cells, search, early stopping, trials, the driver and the run directory."""
