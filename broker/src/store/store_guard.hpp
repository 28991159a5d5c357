// What guards the LMDB store's folder before and while the store is open:
// the folder lock, the refusal of lost data, and a full read of the store in
// a child process (see lmdb_store.cpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace taskmill::broker {

// An exclusive flock on DIR/broker.lock for the life of the object. LMDB's
// own lock.mdb lets several processes share an environment, which is what
// a second broker must not do: both would hand out the same queued tasks.
// Throws store_busy naming the holder's pid when the folder is taken.
class dir_lock {
public:
    explicit dir_lock(const std::filesystem::path& dir);
    ~dir_lock();
    dir_lock(const dir_lock&) = delete;
    dir_lock& operator=(const dir_lock&) = delete;

private:
    std::string holder() const;

    std::filesystem::path path_;
    int fd_ = -1;
};

// LMDB return codes that mean the file is bad, not the call.
bool is_damage(int rc);

// Throws store_damaged: "store in DIR is damaged: WHAT." and what to run.
[[noreturn]] void throw_damaged(const std::filesystem::path& dir, const std::string& what);

// A 0-byte data.mdb where a store lived before (`had_lock_file`, lock.mdb,
// endpoints.json) is lost data, not a new store: LMDB would quietly start an
// empty one. Throws store_damaged unless `allow_empty`.
void refuse_lost_data(const std::filesystem::path& dir, bool had_lock_file, bool allow_empty);

// Reads every entry of the named tables and of LMDB's free list, in a
// child process: a damaged page can make LMDB assert or fault, and that
// must become a message, not the end of the broker. Returns what is wrong,
// or nullopt when everything reads. A child that died holding a reader slot
// leaves it stale: the caller clears it with mdb_reader_check.
std::optional<std::string> read_all_tables_aside(const std::filesystem::path& dir,
                                                 const std::vector<std::string>& tables);

}  // namespace taskmill::broker
