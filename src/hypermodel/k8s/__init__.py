"""Kubernetes deploy of the inference server: the only package that imports the kubernetes client.

``manifests`` builds plain dicts (no client needed) and ``canary`` the canary objects beside
them; ``apply`` sends them and ``rollout`` follows a Deployment (both import the client lazily,
inside functions).
"""
