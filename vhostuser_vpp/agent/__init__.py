"""The node agent: one resident process per node that restores and reconciles pods' ports."""
