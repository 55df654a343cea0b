// Creation of streams, events, contexts and kernel lookups: forwarded as is,
// and recorded, so a restore can create the same objects again.
#include <algorithm>

#include "handler_util.h"

namespace sing::proxy::custom {

namespace {
template <class T>
uint64_t id(T h) {
  return reinterpret_cast<uint64_t>(h);
}
}  // namespace

CUresult cuStreamCreate(Call& c) {
  Arg<CUstream*> out;
  Arg<unsigned int> flags;
  CUresult r = decode_all(c, out, flags);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuStreamCreate)(out.pass(), flags.v)) != CUDA_SUCCESS) return r;
  encode_all(c, out, flags);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.streams[id(to_app(c.client, out.real))] = {flags.v, 0, current_context(c.client)};
  return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(Call& c) {
  Arg<CUstream*> out;
  Arg<unsigned int> flags;
  Arg<int> priority;
  CUresult r = decode_all(c, out, flags, priority);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuStreamCreateWithPriority)(out.pass(), flags.v, priority.v)) != CUDA_SUCCESS) return r;
  encode_all(c, out, flags, priority);
  int clamped = priority.v;
  BACKEND(cuStreamGetPriority)(out.real, &clamped);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.streams[id(to_app(c.client, out.real))] = {flags.v, clamped, current_context(c.client)};
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(Call& c) {
  Arg<CUevent*> out;
  Arg<unsigned int> flags;
  CUresult r = decode_all(c, out, flags);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuEventCreate)(out.pass(), flags.v)) != CUDA_SUCCESS) return r;
  encode_all(c, out, flags);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.events[id(to_app(c.client, out.real))] = flags.v;
  return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v2(Call& c) {
  Arg<CUcontext*> out;
  Arg<unsigned int> flags;
  Arg<CUdevice> dev;
  CUresult r = decode_all(c, out, flags, dev);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuCtxCreate_v2)(out.pass(), flags.v, dev.v)) != CUDA_SUCCESS) return r;
  encode_all(c, out, flags, dev);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.contexts[id(to_app(c.client, out.real))] = {flags.v, dev.v};
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxSetFlags_v2(Call& c) {
  Arg<CUdevice> dev;
  Arg<unsigned int> flags;
  CUresult r = decode_all(c, dev, flags);
  if (r != CUDA_SUCCESS) return r;
  return BACKEND(cuDevicePrimaryCtxSetFlags_v2)(dev.v, flags.v);
}

CUresult cuLibraryGetKernel(Call& c) {
  Arg<CUkernel*> out;
  Arg<CUlibrary> lib;
  Arg<const char*> name;
  CUresult r = decode_all(c, out, lib, name);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuLibraryGetKernel)(out.pass(), lib.real, name.s)) != CUDA_SUCCESS) return r;
  encode_all(c, out, lib, name);
  const uint64_t k = id(to_app(c.client, out.real));
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.kernels[k] = {id(lib.app), name.s ? name.s : ""};
  auto& owned = c.client.module_functions[id(lib.app)];
  if (std::find(owned.begin(), owned.end(), k) == owned.end()) owned.push_back(k);
  return CUDA_SUCCESS;
}

CUresult cuKernelGetFunction(Call& c) {
  Arg<CUfunction*> out;
  Arg<CUkernel> kernel;
  CUresult r = decode_all(c, out, kernel);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuKernelGetFunction)(out.pass(), kernel.real)) != CUDA_SUCCESS) return r;
  encode_all(c, out, kernel);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.kernel_functions[id(to_app(c.client, out.real))] = id(kernel.app);
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy::custom
