"""The hypermodel demo app: wine classification."""
