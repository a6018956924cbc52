// libnixl_build.so: NIXL 1.5's descriptor classes and the nixlDescList<T> instantiations NIXL
// exports, with NIXL's mangled names (nixl_descriptors.h declares them). Plain value code:
// nothing here calls the C ABI.
//
// SPDX-License-Identifier: Apache-2.0
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "nixl_descriptors.h"

const std::string nixl_null_agent = "NULL_AGENT";

namespace {

// The three fields as raw bytes; the descriptor has no vtable, so these are its bytes.
constexpr size_t kBasicBytes = sizeof(uintptr_t) + sizeof(size_t) + sizeof(uint64_t);

nixl_blob_t basic_bytes(const nixlBasicDesc &d) {
    char raw[kBasicBytes];
    std::memcpy(raw, &d.addr, sizeof d.addr);
    std::memcpy(raw + sizeof d.addr, &d.len, sizeof d.len);
    std::memcpy(raw + sizeof d.addr + sizeof d.len, &d.devId, sizeof d.devId);
    return nixl_blob_t(raw, sizeof raw);
}

// Reads the leading fields of `blob` into `d` (all zero when the blob is too short).
void read_basic(const nixl_blob_t &blob, nixlBasicDesc &d) {
    d.addr = 0;
    d.len = 0;
    d.devId = 0;
    if (blob.size() < kBasicBytes) return;
    std::memcpy(&d.addr, blob.data(), sizeof d.addr);
    std::memcpy(&d.len, blob.data() + sizeof d.addr, sizeof d.len);
    std::memcpy(&d.devId, blob.data() + sizeof d.addr + sizeof d.len, sizeof d.devId);
}

std::string tail_of(const nixl_blob_t &blob) {
    return blob.size() > kBasicBytes ? blob.substr(kBasicBytes) : std::string();
}

void describe(std::ostream &os, const nixlBasicDesc &d) {
    os << "addr=0x" << std::hex << d.addr << std::dec << " len=" << d.len << " devId=" << d.devId;
}
void describe(std::ostream &os, const nixlStrideDesc &d) {
    describe(os, static_cast<const nixlBasicDesc &>(d));
    os << " stride=" << d.stride << " count=" << d.count;
}
void describe(std::ostream &os, const nixlBlobDesc &d) {
    describe(os, static_cast<const nixlBasicDesc &>(d));
    os << " metaInfo=" << d.metaInfo.size() << "B";
}
void describe(std::ostream &os, const nixlRemoteDesc &d) {
    describe(os, static_cast<const nixlBasicDesc &>(d));
    os << " remoteAgent=" << d.remoteAgent;
}

const char *mem_name(nixl_mem_t m) {
    switch (m) {
    case DRAM_SEG: return "DRAM_SEG";
    case VRAM_SEG: return "VRAM_SEG";
    case BLK_SEG: return "BLK_SEG";
    case OBJ_SEG: return "OBJ_SEG";
    case FILE_SEG: return "FILE_SEG";
    }
    return "BAD_SEG";
}

} // namespace

/* nixlBasicDesc */

nixlBasicDesc::nixlBasicDesc(const uintptr_t &addr, const size_t &len, const uint64_t &dev_id)
    : addr(addr), len(len), devId(dev_id) {}

nixlBasicDesc::nixlBasicDesc(const nixl_blob_t &str) {
    if (str.size() == kBasicBytes) {
        read_basic(str, *this);
    } else {
        addr = 0;
        len = 0;
        devId = 0;
    }
}

bool operator==(const nixlBasicDesc &lhs, const nixlBasicDesc &rhs) {
    return lhs.addr == rhs.addr && lhs.len == rhs.len && lhs.devId == rhs.devId;
}

bool operator!=(const nixlBasicDesc &lhs, const nixlBasicDesc &rhs) { return !(lhs == rhs); }

bool nixlBasicDesc::overlaps(const nixlBasicDesc &query) const {
    if (devId != query.devId || len == 0 || query.len == 0) return false;
    // Compare half-open ranges without forming addr + len (which may wrap).
    if (addr <= query.addr) return query.addr - addr < len;
    return addr - query.addr < query.len;
}

nixl_blob_t nixlBasicDesc::serialize() const { return basic_bytes(*this); }

void nixlBasicDesc::print(const std::string &suffix) const {
    std::cout << "DESC (" << suffix << "): ";
    describe(std::cout, *this);
    std::cout << '\n';
}

/* nixlBlobDesc */

nixlBlobDesc::nixlBlobDesc(const uintptr_t &addr, const size_t &len, const uint64_t &dev_id,
                           const nixl_blob_t &meta_info)
    : nixlBasicDesc(addr, len, dev_id), metaInfo(meta_info) {}

nixlBlobDesc::nixlBlobDesc(const nixlBasicDesc &desc, const nixl_blob_t &meta_info)
    : nixlBasicDesc(desc), metaInfo(meta_info) {}

nixlBlobDesc::nixlBlobDesc(const nixl_blob_t &str) {
    read_basic(str, *this);
    metaInfo = tail_of(str);
}

bool operator==(const nixlBlobDesc &lhs, const nixlBlobDesc &rhs) {
    return static_cast<const nixlBasicDesc &>(lhs) == static_cast<const nixlBasicDesc &>(rhs) &&
           lhs.metaInfo == rhs.metaInfo;
}

nixl_blob_t nixlBlobDesc::serialize() const { return basic_bytes(*this) + metaInfo; }

void nixlBlobDesc::print(const std::string &suffix) const {
    std::cout << "DESC (" << suffix << "): ";
    describe(std::cout, *this);
    std::cout << '\n';
}

/* nixlRemoteDesc */

nixlRemoteDesc::nixlRemoteDesc(const uintptr_t addr, const size_t len, const uint64_t dev_id,
                               const std::string &remote_agent)
    : nixlBasicDesc(addr, len, dev_id), remoteAgent(remote_agent) {}

nixlRemoteDesc::nixlRemoteDesc(const nixlBasicDesc &desc, const std::string &remote_agent)
    : nixlBasicDesc(desc), remoteAgent(remote_agent) {}

nixlRemoteDesc::nixlRemoteDesc(const nixl_blob_t &str) {
    read_basic(str, *this);
    remoteAgent = tail_of(str);
}

nixl_blob_t nixlRemoteDesc::serialize() const { return basic_bytes(*this) + remoteAgent; }

bool operator==(const nixlRemoteDesc &lhs, const nixlRemoteDesc &rhs) {
    return static_cast<const nixlBasicDesc &>(lhs) == static_cast<const nixlBasicDesc &>(rhs) &&
           lhs.remoteAgent == rhs.remoteAgent;
}

/* nixlDescList<T> */

template <class T>
nixlDescList<T>::nixlDescList(const nixl_mem_t &type, const int &init_size)
    : type(type), descs(init_size > 0 ? static_cast<size_t>(init_size) : 0) {}

template <class T> void nixlDescList<T>::resize(const size_t &count) { descs.resize(count); }

template <class T> void nixlDescList<T>::addDesc(const T &desc) { descs.push_back(desc); }

template <class T> void nixlDescList<T>::remDesc(const int &index) {
    if (index < 0 || static_cast<size_t>(index) >= descs.size())
        throw std::out_of_range("nixlDescList::remDesc: index " + std::to_string(index) +
                                " outside a list of " + std::to_string(descs.size()));
    descs.erase(descs.begin() + index);
}

template <class T> nixlDescList<nixlBasicDesc> nixlDescList<T>::trim() const {
    nixlDescList<nixlBasicDesc> out(type);
    out.reserve(descs.size());
    for (const T &d : descs) out.addDesc(static_cast<const nixlBasicDesc &>(d));
    return out;
}

template <class T> int nixlDescList<T>::getIndex(const nixlBasicDesc &query) const {
    for (size_t i = 0; i < descs.size(); ++i)
        if (static_cast<const nixlBasicDesc &>(descs[i]) == query) return static_cast<int>(i);
    return NIXL_ERR_NOT_FOUND;
}

template <class T> std::string nixlDescList<T>::to_string(bool compact) const {
    std::ostringstream os;
    os << "DescList type=" << mem_name(type) << " count=" << descs.size();
    if (!compact)
        for (const T &d : descs) {
            os << "\n  ";
            describe(os, d);
        }
    return os.str();
}

template <class T> void nixlDescList<T>::print() const { std::cout << to_string() << '\n'; }

template <class Y> bool operator==(const nixlDescList<Y> &lhs, const nixlDescList<Y> &rhs) {
    if (lhs.type != rhs.type || lhs.descs.size() != rhs.descs.size()) return false;
    for (size_t i = 0; i < lhs.descs.size(); ++i)
        if (!(lhs.descs[i] == rhs.descs[i])) return false;
    return true;
}

template class nixlDescList<nixlBasicDesc>;
template class nixlDescList<nixlStrideDesc>;
template class nixlDescList<nixlBlobDesc>;
template class nixlDescList<nixlRemoteDesc>;
template bool operator==(const nixlDescList<nixlBasicDesc> &, const nixlDescList<nixlBasicDesc> &);
template bool operator==(const nixlDescList<nixlStrideDesc> &, const nixlDescList<nixlStrideDesc> &);
template bool operator==(const nixlDescList<nixlBlobDesc> &, const nixlDescList<nixlBlobDesc> &);
template bool operator==(const nixlDescList<nixlRemoteDesc> &, const nixlDescList<nixlRemoteDesc> &);
