// The worker's figures for the supervisor (see worker_stats.hpp).
#include "worker_stats.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>

namespace taskmill::host::detail {

namespace {

using metrics::seconds_histogram;

constexpr uint64_t magic = 0x31535453544d4b54ULL;  // "TKMTSTS1"
constexpr std::size_t header_words = 3;            // magic, handlers, busy
constexpr std::size_t bucket_words = seconds_histogram::bounds.size() + 1;
constexpr std::size_t name_words = worker_stats::name_size / 8;
// succeeded failed retried cancelled timeouts, buckets, sum_ns
constexpr std::size_t count_words = 5;
constexpr std::size_t entry_words = name_words + count_words + bucket_words + 1;

std::size_t entry_at(std::size_t i) { return header_words + i * entry_words; }

void add(uint64_t& word, uint64_t n) noexcept {
    std::atomic_ref<uint64_t>(word).fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

void handler_figures::add(const handler_figures& o) {
    succeeded += o.succeeded;
    failed += o.failed;
    retried += o.retried;
    cancelled += o.cancelled;
    timeouts += o.timeouts;
    for (std::size_t i = 0; i < run.buckets.size(); ++i) run.buckets[i] += o.run.buckets[i];
    run.sum += o.run.sum;
    run.count += o.run.count;
}

std::filesystem::path worker_stats_path(const std::string& run_dir, pid_t pid) {
    return std::filesystem::path(run_dir) / ("worker-" + std::to_string(pid)) / "stats";
}

worker_stats::~worker_stats() {
    if (words_ != nullptr) ::munmap(words_, size_);
}

bool worker_stats::open(const std::filesystem::path& path, const std::vector<std::string>& handlers) {
    if (words_ != nullptr) return false;
    for (const auto& h : handlers) {
        if (names_.size() < max_handlers && !h.empty() && h.size() <= name_size &&
            std::find(names_.begin(), names_.end(), h) == names_.end()) {
            names_.push_back(h);
        }
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    std::size_t size = entry_at(names_.size()) * sizeof(uint64_t);
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        ::close(fd);
        ::unlink(path.c_str());
        return false;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
        ::unlink(path.c_str());
        return false;
    }
    words_ = static_cast<uint64_t*>(p);
    size_ = size;
    for (std::size_t i = 0; i < names_.size(); ++i) {
        std::memcpy(words_ + entry_at(i), names_[i].data(), names_[i].size());
    }
    words_[1] = names_.size();
    std::atomic_ref<uint64_t>(words_[0]).store(magic, std::memory_order_release);  // complete from here
    return true;
}

void worker_stats::slot_busy(bool busy) noexcept {
    if (words_ == nullptr) return;
    std::atomic_ref<uint64_t>(words_[2]).fetch_add(busy ? 1 : ~uint64_t{0}, std::memory_order_relaxed);
}

void worker_stats::ran(std::string_view handler, std::string_view status, uint64_t run_ns) noexcept {
    if (words_ == nullptr) return;
    handler = handler.substr(0, handler.find('@'));
    auto it = std::find(names_.begin(), names_.end(), handler);
    if (it == names_.end()) return;
    uint64_t* e = words_ + entry_at(static_cast<std::size_t>(it - names_.begin())) + name_words;
    static constexpr std::string_view statuses[count_words] = {"ok", "fail", "retry", "cancelled", "timeout"};
    for (std::size_t i = 0; i < count_words; ++i) {
        if (status == statuses[i]) add(e[i], 1);
    }
    const double seconds = static_cast<double>(run_ns) / 1e9;
    const auto& bounds = seconds_histogram::bounds;
    add(e[count_words +
          static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin())],
        1);
    add(e[count_words + bucket_words], run_ns);
}

std::optional<worker_figures> read_worker_stats(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A worker that died before it wrote its file leaves none, or an empty one.
    if (bytes.size() < header_words * sizeof(uint64_t)) {
        return std::nullopt;
    }
    std::vector<uint64_t> w(bytes.size() / sizeof(uint64_t));
    std::memcpy(w.data(), bytes.data(), w.size() * sizeof(uint64_t));
    if (w[0] != magic || w[1] > worker_stats::max_handlers || w.size() < entry_at(w[1])) {
        return std::nullopt;
    }
    worker_figures out;
    out.busy = w[2];
    for (std::size_t i = 0; i < w[1]; ++i) {
        const uint64_t* e = w.data() + entry_at(i);
        const char* name = reinterpret_cast<const char*>(e);
        handler_figures f;
        const uint64_t* c = e + name_words;
        f.succeeded = c[0];
        f.failed = c[1];
        f.retried = c[2];
        f.cancelled = c[3];
        f.timeouts = c[4];
        for (std::size_t b = 0; b < bucket_words; ++b) {
            f.run.buckets[b] = c[count_words + b];
            f.run.count += c[count_words + b];
        }
        f.run.sum = static_cast<double>(c[count_words + bucket_words]) / 1e9;
        out.handlers.emplace_back(std::string(name, strnlen(name, worker_stats::name_size)), f);
    }
    return out;
}

}  // namespace taskmill::host::detail
