"""Talking to VPP over its binary API."""
