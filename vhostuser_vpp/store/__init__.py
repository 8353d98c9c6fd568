"""The on-disk state under cniDir: paths, atomic writes, locks and the files a pod reads."""
