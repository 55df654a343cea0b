// Stream-ordered allocation, emulated on the client's heap so that pool
// memory too lives in the job's address range (a driver pool would allocate
// outside it, and could not be restored at the same addresses).
#pragma once
#include <cstdint>
#include <vector>

#include "client.h"

namespace sing::proxy {

// Returns to the heap every cuMemFreeAsync whose stream has passed it.
void reclaim_pending_frees(Client& client);
// cuMemFree of a pool allocation: drop it from its pool's accounting.
void forget_pool_allocation(Client& client, uint64_t ptr);
// The app's pool id of the allocation at ptr, 0 if none.
uint64_t pool_of(Client& client, uint64_t ptr);
// Gives retained blocks beyond `keep` bytes back (their pointers into
// *release, freed by the caller outside the client lock).
void trim_pool(Pool& pool, uint64_t keep, std::vector<uint64_t>* release);

}  // namespace sing::proxy
