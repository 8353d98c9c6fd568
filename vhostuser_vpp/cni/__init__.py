"""The CNI protocol layer: environment, stdin, versions, results, errors, delegation.

Nothing in this package knows about VPP; it would serve any CNI plugin.
"""
