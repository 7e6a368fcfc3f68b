"""The manager's edge: the analysis queue's socket, its framing, and the envelope of an event."""
