"""Type stubs for the native module singularity_proxy._core."""

CUDA_VERSION: int

class PtxError(ValueError): ...

def ptx_kernels(ptx: str) -> list[dict[str, object]]: ...
