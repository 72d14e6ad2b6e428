"""Serving: the inference app (Flask/waitress), model references, Kubernetes deployment."""
