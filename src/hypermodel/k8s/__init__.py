"""Kubernetes deploy of the inference server: the only package that imports the kubernetes client.

``manifests`` builds plain dicts (no client needed); ``apply`` sends them (imports the client
lazily, inside functions).
"""
