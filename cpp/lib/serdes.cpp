// libserdes.so: a name-only stub. Engines link NIXL as -lnixl -lnixl_build (and TensorRT-LLM's
// FindNIXL also finds libserdes), so a binary built against NIXL records libserdes.so as
// needed. NIXL's nixlSerDes (its metadata serializer) is not part of the API nixl-rs
// implements (cpp/abi/excluded-symbols.txt): this library only lets the name resolve.
//
// SPDX-License-Identifier: Apache-2.0
