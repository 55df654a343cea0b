// The app's own physical VMM allocations (Client::app_allocations), shared by
// the handlers that hand out handles to them: custom_vmm.cpp (create, retain)
// and custom_vmm_share.cpp (import).
#pragma once
#include <cstdint>

#include "client.h"

namespace sing::proxy {

// The app now holds one more handle to `real` (retained, or imported): the
// id it already has for it with one more reference, or a new id recorded
// with the backend's properties.  `shared`: holders outside the proxy may
// map it (mark_shared).
uint64_t hold_allocation(Client& client, CUmemGenericAllocationHandle real, uint64_t bytes, bool shared);

// The address of a mapping of the app that uses the allocation `vid`, 0 if
// none does.  Under client.mu.
uint64_t mapping_of(const Client& client, uint64_t vid);

// The allocation `vid` and every mapping of it (a mapping outlives a release
// of its handle) have holders outside the proxy: no image may be written of
// them.  Under client.mu.
void mark_shared(Client& client, uint64_t vid);

}  // namespace sing::proxy
