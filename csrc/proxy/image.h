// A client's device state as a checkpoint image: a JSON manifest (objects,
// allocator state, virtual-id table) and memory contents as chunks in a
// content-addressed store (chunk_store.h).  docs/checkpoint.md has the layout.
#pragma once
#include <memory>
#include <string>

#include "chunk_store.h"
#include "client.h"

namespace sing::proxy {

inline constexpr int kImageFormat = 1;

// Writes the device state of a quiesced client: chunks into `chunks`, the
// manifest (atomically) to `manifest`.
CUresult write_image(Client& client, const std::string& chunks, const std::string& manifest, ChunkStats* stats,
                     std::string& error);

// The bytes of device memory an image of the client holds (before dedup):
// what a migration sizes its temporary image by.
uint64_t image_memory_bytes(Client& client);

// Builds a detached client from an image: the job's range reserved and
// mapped again, every object recreated and every id rebound, memory refilled.
// It waits for the app to reattach with the image's token.  Every chunk is
// verified; on any failure nothing of the client is left.
std::unique_ptr<Client> read_image(uint32_t client_id, const std::string& chunks, const std::string& manifest,
                                   std::string& error);

}  // namespace sing::proxy
