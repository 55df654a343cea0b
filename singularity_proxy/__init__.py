"""Singularity: transparent preemption, migration and elastic scheduling of unmodified GPU jobs.

The public Python API of the host side.  The native parts (the simulated GPU,
the shim, the proxy) ship inside this package; :func:`native_paths` finds them.
"""
from singularity_proxy.artifacts import NativeArtifactMissing, native_paths, proxied_env, simulated_gpu_env
from singularity_proxy.errors import SingularityError

__all__ = ["NativeArtifactMissing", "SingularityError", "native_paths", "proxied_env", "simulated_gpu_env"]
__version__ = "0.1.0"
