"""Thin kopf handlers: read the cluster, call qbackbone's domain core, write status."""
