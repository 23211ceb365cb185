"""Verification of results against exact simulation or physical bounds."""
