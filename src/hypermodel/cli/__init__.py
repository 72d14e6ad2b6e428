"""Command-line interfaces: each app's own console script and the project-level ``hml``."""
