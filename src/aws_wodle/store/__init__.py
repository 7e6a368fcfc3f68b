"""The state: checkpoints in SQLite, the state directory entered safely, the old module's state."""
