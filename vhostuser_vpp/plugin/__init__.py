"""The plugin's logic: one module per CNI verb, with rollback, over the store and a backend."""
