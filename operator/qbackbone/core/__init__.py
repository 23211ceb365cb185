"""The domain core: pure Python, no Kubernetes imports."""
