"""Backbone telemetry for detect and predict: a seeded generator and users' CSV series."""
