// raft_uv's TCP transport with TCP_NODELAY on every connection.
//
// libraft 0.15 never sets TCP_NODELAY, so an entry that ends in a partial
// segment waits for the peer's delayed ACK (up to 40 ms on Linux) while
// later entries queue behind it: several times slower at turn-sized
// entries. This wraps the stock transport through its public interface and
// sets the option on each stream it accepts or connects.
#pragma once

#include <uv.h>

#include "cluster/raft_c.hpp"

namespace taskmill::broker::cluster {

class nodelay_transport {
public:
    explicit nodelay_transport(uv_loop_t* loop);
    ~nodelay_transport();
    nodelay_transport(const nodelay_transport&) = delete;
    nodelay_transport& operator=(const nodelay_transport&) = delete;

    // What raft_uv_init is given. Valid for the object's life.
    raft_uv_transport* get() { return &outer_; }
    // 0, or what raft_uv_tcp_init failed with.
    int init_status() const { return init_rc_; }

private:
    static nodelay_transport& of(raft_uv_transport* t) { return *static_cast<nodelay_transport*>(t->impl); }
    static nodelay_transport& of_inner(raft_uv_transport* t) { return *static_cast<nodelay_transport*>(t->data); }

    static int init(raft_uv_transport* t, raft_id id, const char* address);
    static int listen(raft_uv_transport* t, raft_uv_accept_cb cb);
    static int connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
                       raft_uv_connect_cb cb);
    static void close(raft_uv_transport* t, raft_uv_transport_close_cb cb);

    raft_uv_transport outer_{};
    raft_uv_transport inner_{};
    int init_rc_ = 0;
    raft_uv_accept_cb accept_cb_ = nullptr;
    raft_uv_transport_close_cb close_cb_ = nullptr;
};

}  // namespace taskmill::broker::cluster
