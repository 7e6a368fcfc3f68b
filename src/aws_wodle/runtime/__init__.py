"""The runtime: the command line, the run loop, signals, systemd, metrics, logging, the old CLI."""
