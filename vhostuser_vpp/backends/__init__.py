"""Ways of driving VPP. The plugin sees only the `PortBackend` protocol in `base`."""
