"""Turning failures of the layers below into CNI errors, in one place."""

from __future__ import annotations

from vhostuser_vpp.backends.base import BackendError, BackendMisconfigured, BackendUnavailable
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.store.attachment import StoreError
from vhostuser_vpp.store.lock import LockTimeout


def from_backend(err: BackendError, during: str) -> CniError:
    if isinstance(err, BackendUnavailable):
        code = CniCode.TRY_AGAIN_LATER
    elif isinstance(err, BackendMisconfigured):
        code = CniCode.INVALID_CONFIG
    else:
        code = CniCode.INTERNAL
    return CniError(code, f"{during}: {err.msg}", err.details)


def from_store(err: StoreError) -> CniError:
    return CniError(CniCode.IO_FAILURE, err.msg, err.details)


def from_lock_timeout(err: LockTimeout) -> CniError:
    return CniError(CniCode.TRY_AGAIN_LATER, "another plugin holds this container's lock", str(err))


def combine(errors: list[CniError], what: str) -> CniError:
    """One error for several: "try again later" wins, so the runtime retries the whole DEL."""
    if len(errors) == 1:
        return errors[0]
    codes = {e.code for e in errors}
    code = CniCode.TRY_AGAIN_LATER if CniCode.TRY_AGAIN_LATER in codes else errors[0].code
    return CniError(code, f"{what}: {len(errors)} steps failed", "; ".join(str(e) for e in errors))
