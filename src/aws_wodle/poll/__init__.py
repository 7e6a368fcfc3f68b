"""The polling source: a pass per service and per group, its windows, boundaries and discovery."""
