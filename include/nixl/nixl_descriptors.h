/*
 * nixl_descriptors.h: NIXL 1.5's descriptors (nixlBasicDesc, nixlStrideDesc, nixlBlobDesc,
 * nixlRemoteDesc) and descriptor lists (nixlDescList<T> and its aliases), layout-identical to
 * NIXL's. What NIXL defines out of line is declared here and defined in libnixl_build.so
 * (nixl-rs's cpp/lib/descriptors.cpp), so a consumer binary calls whichever library it runs on.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_NIXL_DESCRIPTORS_H
#define NIXL_RS_NIXL_DESCRIPTORS_H

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "nixl_types.h"

// A contiguous range of one device: [addr, addr + len) on devId (GPU id, fd, volume, ...).
// No virtual functions: 24 bytes, three words.
class nixlBasicDesc {
  public:
    uintptr_t addr;
    size_t len;
    uint64_t devId;

    // Leaves the fields uninitialized, as NIXL's does.
    nixlBasicDesc() {}
    nixlBasicDesc(const uintptr_t &addr, const size_t &len, const uint64_t &dev_id);
    // From serialize()'s bytes; a blob of the wrong size gives the all-zero descriptor.
    nixlBasicDesc(const nixl_blob_t &str);
    nixlBasicDesc(const nixlBasicDesc &desc) = default;
    nixlBasicDesc &operator=(const nixlBasicDesc &desc) = default;
    ~nixlBasicDesc() = default;

    // Ordered by (devId, addr, len), the order registrations are searched in.
    bool operator<(const nixlBasicDesc &desc) const noexcept {
        if (devId != desc.devId) return devId < desc.devId;
        if (addr != desc.addr) return addr < desc.addr;
        return len < desc.len;
    }
    friend bool operator==(const nixlBasicDesc &lhs, const nixlBasicDesc &rhs);
    friend bool operator!=(const nixlBasicDesc &lhs, const nixlBasicDesc &rhs);

    // Whether `query` lies wholly inside this range on the same device (without overflowing).
    bool covers(const nixlBasicDesc &query) const noexcept {
        if (devId != query.devId || addr > query.addr) return false;
        if (len == SIZE_MAX) return query.len <= std::numeric_limits<uintptr_t>::max() - query.addr;
        const uintptr_t end = addr + len;
        return query.addr <= end && query.len <= end - query.addr;
    }
    bool overlaps(const nixlBasicDesc &query) const;
    // The three fields as bytes, host-endian.
    nixl_blob_t serialize() const;
    void print(const std::string &suffix) const;
};

// A run of `count` blocks of `len` bytes whose starts are `stride` bytes apart.
struct nixlStrideDesc : public nixlBasicDesc {
    size_t stride = 0;
    size_t count = 0;

    using nixlBasicDesc::nixlBasicDesc;
    nixlStrideDesc() = default;
    nixlStrideDesc(const uintptr_t &addr, const size_t &len, const uint64_t &dev_id,
                   const size_t &stride, const size_t &count)
        : nixlBasicDesc(addr, len, dev_id), stride(stride), count(count) {}

    friend bool operator==(const nixlStrideDesc &lhs, const nixlStrideDesc &rhs) {
        return static_cast<const nixlBasicDesc &>(lhs) == static_cast<const nixlBasicDesc &>(rhs) &&
               lhs.stride == rhs.stride && lhs.count == rhs.count;
    }
    friend bool operator!=(const nixlStrideDesc &lhs, const nixlStrideDesc &rhs) { return !(lhs == rhs); }
};

// A registration descriptor: the range plus backend-specific bytes (a file path, an object key).
class nixlBlobDesc : public nixlBasicDesc {
  public:
    nixl_blob_t metaInfo;

    using nixlBasicDesc::nixlBasicDesc;
    nixlBlobDesc(const uintptr_t &addr, const size_t &len, const uint64_t &dev_id,
                 const nixl_blob_t &meta_info);
    nixlBlobDesc(const nixlBasicDesc &desc, const nixl_blob_t &meta_info);
    nixlBlobDesc(const nixl_blob_t &str);

    friend bool operator==(const nixlBlobDesc &lhs, const nixlBlobDesc &rhs);
    nixl_blob_t serialize() const;
    void print(const std::string &suffix) const;
};

// A descriptor of another agent's memory, for memory views spanning several peers.
struct nixlRemoteDesc : public nixlBasicDesc {
    std::string remoteAgent;

    using nixlBasicDesc::nixlBasicDesc;
    nixlRemoteDesc(const uintptr_t addr, const size_t len, const uint64_t dev_id,
                   const std::string &remote_agent);
    nixlRemoteDesc(const nixlBasicDesc &desc, const std::string &remote_agent);
    explicit nixlRemoteDesc(const nixl_blob_t &str);

    nixl_blob_t serialize() const;
};

bool operator==(const nixlRemoteDesc &lhs, const nixlRemoteDesc &rhs);

// A list of descriptors of one memory type. Layout: vtable pointer, type, std::vector<T>
// (40 bytes); the virtual functions, in vtable order, are the destructor, resize, addDesc
// and getIndex. libnixl_build.so instantiates it for the four public descriptor types.
// NIXL's nixlSerDes constructor and serialize(nixlSerDes *) are left out (see
// cpp/abi/excluded-symbols.txt).
template <class T> class nixlDescList {
  protected:
    nixl_mem_t type;
    std::vector<T> descs;

  public:
    // `init_size` descriptors, left uninitialized as NIXL's are.
    nixlDescList(const nixl_mem_t &type, const int &init_size = 0);
    nixlDescList(const nixlDescList<T> &d_list) = default;
    nixlDescList &operator=(const nixlDescList<T> &d_list) = default;
    virtual ~nixlDescList() = default;

    inline nixl_mem_t getType() const { return type; }
    inline int descCount() const { return static_cast<int>(descs.size()); }
    bool isEmpty() const noexcept { return descs.empty(); }

    // Unchecked, as NIXL's.
    const T &operator[](size_t index) const { return descs[index]; }
    T &operator[](size_t index) { return descs[index]; }

    inline typename std::vector<T>::const_iterator begin() const { return descs.begin(); }
    inline typename std::vector<T>::const_iterator end() const { return descs.end(); }
    inline typename std::vector<T>::iterator begin() { return descs.begin(); }
    inline typename std::vector<T>::iterator end() { return descs.end(); }

    template <class Y> friend bool operator==(const nixlDescList<Y> &lhs, const nixlDescList<Y> &rhs);

    virtual void resize(const size_t &count);
    inline void reserve(size_t count) { descs.reserve(count); }
    inline void clear() { descs.clear(); }
    virtual void addDesc(const T &desc);
    template <class... Args> T &emplace(Args &&...args) {
        return descs.emplace_back(std::forward<Args>(args)...);
    }
    // Throws std::out_of_range for an index outside the list.
    void remDesc(const int &index);
    // The same list without the per-descriptor extras (metaInfo, remoteAgent, stride).
    nixlDescList<nixlBasicDesc> trim() const;
    // Index of the descriptor equal in (addr, len, devId) to `query`, else NIXL_ERR_NOT_FOUND.
    virtual int getIndex(const nixlBasicDesc &query) const;
    void print() const;
    std::string to_string(bool compact = false) const;
};

using nixl_xfer_dlist_t = nixlDescList<nixlBasicDesc>;
using nixl_stride_dlist_t = nixlDescList<nixlStrideDesc>;
using nixl_reg_dlist_t = nixlDescList<nixlBlobDesc>;
using nixl_remote_dlist_t = nixlDescList<nixlRemoteDesc>;
using nixl_local_dlist_t = nixlDescList<nixlBasicDesc>;

#endif // NIXL_RS_NIXL_DESCRIPTORS_H
