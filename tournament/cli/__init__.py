"""The command line (`tournament ...`): one module per command group, and the benches under `bench/`."""
