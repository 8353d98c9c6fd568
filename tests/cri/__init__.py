"""containerd as kubelet drives it, for tests/integration/test_containerd.py: a private
containerd (`containerd.py`) and a CRI client over gRPC (`client.py`), whose Python stubs
are compiled from the CRI v1 definition in this directory (`api.proto`, kubernetes/cri-api
at commit 791729b, Apache-2.0) when a test session first needs them, never committed."""
