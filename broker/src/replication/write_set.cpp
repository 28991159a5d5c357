#include "replication/write_set.hpp"

#include <algorithm>
#include <functional>
#include <vector>

namespace taskmill::broker::replication {
namespace {

constexpr std::string_view header = "TMW1";

void put_u32(std::string& out, std::size_t n) {
    for (int i = 3; i >= 0; --i) {
        out.push_back(static_cast<char>(n >> (8 * i)));
    }
}

uint32_t get_u32(std::string_view in) {
    uint32_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        n = n << 8 | static_cast<uint8_t>(in[i]);
    }
    return n;
}

// The header: the magic and the count of changes.
std::string empty_entry() {
    std::string out(header);
    put_u32(out, 0);
    return out;
}
constexpr std::size_t header_size = header.size() + 4;

// Reads an entry front to back; every read checks the bytes are there.
class reader {
public:
    reader(std::string_view in, std::size_t from) : in_(in), at_(from) {}

    bool done() const { return at_ == in_.size(); }
    std::size_t at() const { return at_; }

    bool byte(uint8_t& out) {
        if (in_.size() - at_ < 1) {
            return false;
        }
        out = static_cast<uint8_t>(in_[at_++]);
        return true;
    }

    bool bytes(std::string_view& out) {
        if (in_.size() - at_ < 4) {
            return false;
        }
        const std::size_t n = get_u32(in_.substr(at_));
        at_ += 4;
        if (in_.size() - at_ < n) {
            return false;
        }
        out = in_.substr(at_, n);
        at_ += n;
        return true;
    }

private:
    std::string_view in_;
    std::size_t at_;
};

failure damaged(std::size_t at, const std::string& what) {
    return fail(errc::corrupt, "replicated entry damaged at byte " + std::to_string(at) + ": " + what);
}

// The next change at `r`, or what is wrong with it.
result<change> read_change(reader& r) {
    const std::size_t start = r.at();
    uint8_t kind = 0;
    uint8_t t = 0;
    change c;
    if (!r.byte(kind) || !r.byte(t) || !r.bytes(c.key)) {
        return damaged(start, "it ends inside a change");
    }
    if (kind != change::put && kind != change::erase && kind != change::clear) {
        return damaged(start, "unknown kind of change " + std::to_string(kind));
    }
    if (t >= table_count) {
        return damaged(start, "unknown table " + std::to_string(t));
    }
    c.what = static_cast<change::kind>(kind);
    c.t = static_cast<table>(t);
    if (c.what == change::put && !r.bytes(c.value)) {
        return damaged(start, "it ends inside a value");
    }
    return c;
}

}  // namespace

write_set::write_set() : bytes_(empty_entry()) {}

void write_set::add(change::kind kind, table t, std::string_view key) {
    bytes_.push_back(static_cast<char>(static_cast<uint8_t>(kind)));
    bytes_.push_back(static_cast<char>(t));
    put_u32(bytes_, key.size());
    bytes_.append(key);
    ++changes_;
    std::string count;
    put_u32(count, changes_);
    bytes_.replace(header.size(), 4, count);
}

void write_set::put(table t, std::string_view key, std::string_view value) {
    add(change::put, t, key);
    put_u32(bytes_, value.size());
    bytes_.append(value);
}

void write_set::erase(table t, std::string_view key) { add(change::erase, t, key); }

void write_set::clear(table t) { add(change::clear, t, {}); }

result<void> apply(transaction& txn, const change& c) {
    switch (c.what) {
        case change::put: return txn.put(c.t, c.key, c.value);
        case change::erase: return txn.erase(c.t, c.key);
        case change::clear: return txn.clear(c.t);
    }
    return fail(errc::internal, "unknown change");
}

std::string write_set::take() {
    std::string out = std::move(bytes_);
    bytes_ = empty_entry();
    changes_ = 0;
    return out;
}

result<void> for_each_change(std::string_view entry, const change_fn& fn) {
    if (entry.size() < header_size || entry.substr(0, header.size()) != header) {
        return damaged(0, "it does not start with " + std::string(header) + " and a count");
    }
    const uint32_t count = get_u32(entry.substr(header.size()));
    reader r(entry, header_size);
    std::vector<change> changes;
    changes.reserve(std::min<std::size_t>(count, entry.size() / 10));
    while (!r.done() && changes.size() < count) {
        auto c = read_change(r);
        if (!c) {
            return failure{c.error()};
        }
        changes.push_back(*c);
    }
    if (changes.size() != count || !r.done()) {
        return damaged(r.at(), "it holds " + std::string(r.done() ? "fewer" : "more") + " than the " +
                                   std::to_string(count) + " changes its header counts");
    }
    for (const auto& c : changes) {
        if (auto rc = fn(c); !rc) {
            return rc;
        }
    }
    return {};
}

}  // namespace taskmill::broker::replication
