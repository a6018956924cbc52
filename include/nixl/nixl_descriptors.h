/*
 * nixl_descriptors.h: NIXL's descriptors (nixlBasicDesc, nixlBlobDesc, nixlRemoteDesc) and
 * descriptor lists (nixlDescList<T>, nixl_xfer_dlist_t, nixl_reg_dlist_t, ...). Plain value
 * types: nothing here calls the library.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_NIXL_DESCRIPTORS_H
#define NIXL_RS_NIXL_DESCRIPTORS_H

#include <cstdint>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nixl_types.h"

// A contiguous range of one device: [addr, addr + len) on devId (GPU id, fd, volume, ...).
class nixlBasicDesc {
  public:
    uintptr_t addr = 0;
    size_t len = 0;
    uint64_t devId = 0;

    nixlBasicDesc() = default;
    nixlBasicDesc(const uintptr_t &addr_, const size_t &len_, const uint64_t &dev_id)
        : addr(addr_), len(len_), devId(dev_id) {}
    // From serialize()'s bytes; a blob of the wrong size gives the all-zero descriptor.
    explicit nixlBasicDesc(const nixl_blob_t &blob) {
        if (blob.size() == sizeof(Raw)) {
            Raw raw;
            std::memcpy(&raw, blob.data(), sizeof raw);
            addr = raw.addr;
            len = raw.len;
            devId = raw.devId;
        }
    }
    virtual ~nixlBasicDesc() = default;
    nixlBasicDesc(const nixlBasicDesc &) = default;
    nixlBasicDesc &operator=(const nixlBasicDesc &) = default;

    // Ordered by (devId, addr, len), the order registrations are searched in.
    friend bool operator<(const nixlBasicDesc &a, const nixlBasicDesc &b) {
        return std::tie(a.devId, a.addr, a.len) < std::tie(b.devId, b.addr, b.len);
    }
    friend bool operator==(const nixlBasicDesc &a, const nixlBasicDesc &b) {
        return a.addr == b.addr && a.len == b.len && a.devId == b.devId;
    }
    friend bool operator!=(const nixlBasicDesc &a, const nixlBasicDesc &b) { return !(a == b); }

    // Whether `other` lies wholly inside this range on the same device.
    bool covers(const nixlBasicDesc &other) const {
        return devId == other.devId && other.addr >= addr && other.addr + other.len <= addr + len;
    }
    bool overlaps(const nixlBasicDesc &other) const {
        return devId == other.devId && other.addr < addr + len && addr < other.addr + other.len;
    }
    // The in-memory fields as bytes, host-endian, as NIXL serializes them.
    nixl_blob_t serialize() const {
        Raw raw{addr, len, devId};
        return nixl_blob_t(reinterpret_cast<const char *>(&raw), sizeof raw);
    }
    void print(const std::string &suffix) const {
        std::cout << "DESC: addr=0x" << std::hex << addr << std::dec << " len=" << len
                  << " devId=" << devId << ' ' << suffix << '\n';
    }

  private:
    struct Raw {
        uintptr_t addr;
        size_t len;
        uint64_t devId;
    };
};

// A registration descriptor: the range plus backend-specific bytes (a file path, an object key).
class nixlBlobDesc : public nixlBasicDesc {
  public:
    nixl_blob_t metaInfo;

    nixlBlobDesc() = default;
    nixlBlobDesc(const uintptr_t &addr_, const size_t &len_, const uint64_t &dev_id,
                 const nixl_blob_t &meta_info = "")
        : nixlBasicDesc(addr_, len_, dev_id), metaInfo(meta_info) {}
    nixlBlobDesc(const nixlBasicDesc &desc, const nixl_blob_t &meta_info)
        : nixlBasicDesc(desc), metaInfo(meta_info) {}

    friend bool operator==(const nixlBlobDesc &a, const nixlBlobDesc &b) {
        return static_cast<const nixlBasicDesc &>(a) == static_cast<const nixlBasicDesc &>(b) &&
               a.metaInfo == b.metaInfo;
    }
    void print(const std::string &suffix) const {
        nixlBasicDesc::print("metaInfo=" + std::to_string(metaInfo.size()) + "B " + suffix);
    }
};

// A descriptor of another agent's memory, for memory views spanning several peers.
class nixlRemoteDesc : public nixlBasicDesc {
  public:
    std::string remoteAgent;

    nixlRemoteDesc() = default;
    nixlRemoteDesc(const uintptr_t &addr_, const size_t &len_, const uint64_t &dev_id,
                   const std::string &remote_agent)
        : nixlBasicDesc(addr_, len_, dev_id), remoteAgent(remote_agent) {}

    friend bool operator==(const nixlRemoteDesc &a, const nixlRemoteDesc &b) {
        return static_cast<const nixlBasicDesc &>(a) == static_cast<const nixlBasicDesc &>(b) &&
               a.remoteAgent == b.remoteAgent;
    }
};

// A list of descriptors of one memory type.
template <class T> class nixlDescList {
  public:
    explicit nixlDescList(const nixl_mem_t &type, const int &init_size = 0)
        : type_(type), descs_(init_size > 0 ? static_cast<size_t>(init_size) : 0) {}

    nixl_mem_t getType() const { return type_; }
    int descCount() const { return static_cast<int>(descs_.size()); }
    bool isEmpty() const { return descs_.empty(); }

    // Bounds-checked, as NIXL's operator[] (std::out_of_range).
    const T &operator[](unsigned int index) const { return descs_.at(index); }
    T &operator[](unsigned int index) { return descs_.at(index); }

    typename std::vector<T>::const_iterator begin() const { return descs_.begin(); }
    typename std::vector<T>::const_iterator end() const { return descs_.end(); }
    typename std::vector<T>::iterator begin() { return descs_.begin(); }
    typename std::vector<T>::iterator end() { return descs_.end(); }

    void addDesc(const T &desc) { descs_.push_back(desc); }
    template <class... Args> void emplace(Args &&...args) {
        descs_.emplace_back(std::forward<Args>(args)...);
    }
    void remDesc(const int &index) {
        if (index < 0 || index >= descCount()) throw std::out_of_range("nixlDescList::remDesc");
        descs_.erase(descs_.begin() + index);
    }
    void resize(const size_t &count) { descs_.resize(count); }
    void trim() { descs_.shrink_to_fit(); }
    void clear() { descs_.clear(); }

    // Index of the descriptor equal in (addr, len, devId) to `query`, or NIXL_ERR_NOT_FOUND.
    int getIndex(const nixlBasicDesc &query) const {
        for (size_t i = 0; i < descs_.size(); ++i)
            if (static_cast<const nixlBasicDesc &>(descs_[i]) == query) return static_cast<int>(i);
        return NIXL_ERR_NOT_FOUND;
    }

    friend bool operator==(const nixlDescList &a, const nixlDescList &b) {
        return a.type_ == b.type_ && a.descs_ == b.descs_;
    }
    friend bool operator!=(const nixlDescList &a, const nixlDescList &b) { return !(a == b); }

    void print() const {
        std::cout << "DESC LIST: type=" << nixlEnumStrings::memTypeStr(type_)
                  << " count=" << descs_.size() << '\n';
        for (const auto &d : descs_) d.print("");
    }

  private:
    nixl_mem_t type_;
    std::vector<T> descs_;
};

using nixl_xfer_dlist_t = nixlDescList<nixlBasicDesc>;
using nixl_reg_dlist_t = nixlDescList<nixlBlobDesc>;
using nixl_remote_dlist_t = nixlDescList<nixlRemoteDesc>;
using nixl_local_dlist_t = nixlDescList<nixlBasicDesc>;

#endif // NIXL_RS_NIXL_DESCRIPTORS_H
