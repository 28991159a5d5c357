#include "cluster/nodelay_transport.hpp"

namespace taskmill::broker::cluster {
namespace {

// A connect request of ours in front of raft_uv's, alive until its callback.
struct connect_request {
    raft_uv_connect inner{};
    raft_uv_connect* outer = nullptr;
};

void no_delay(uv_stream_t* stream) {
    if (stream != nullptr && stream->type == UV_TCP) {
        uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
    }
}

}  // namespace

nodelay_transport::nodelay_transport(uv_loop_t* loop) {
    init_rc_ = raft_uv_tcp_init(&inner_, loop);
    inner_.data = this;
    outer_.impl = this;
    outer_.init = &nodelay_transport::init;
    outer_.listen = &nodelay_transport::listen;
    outer_.connect = &nodelay_transport::connect;
    outer_.close = &nodelay_transport::close;
}

nodelay_transport::~nodelay_transport() {
    if (init_rc_ == 0) {
        raft_uv_tcp_close(&inner_);
    }
}

int nodelay_transport::init(raft_uv_transport* t, raft_id id, const char* address) {
    auto& self = of(t);
    return self.inner_.init(&self.inner_, id, address);
}

int nodelay_transport::listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
    auto& self = of(t);
    self.accept_cb_ = cb;
    return self.inner_.listen(&self.inner_,
                              [](raft_uv_transport* inner, raft_id id, const char* address, uv_stream_t* stream) {
                                  auto& owner = of_inner(inner);
                                  no_delay(stream);
                                  owner.accept_cb_(&owner.outer_, id, address, stream);
                              });
}

int nodelay_transport::connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
                               raft_uv_connect_cb cb) {
    auto& self = of(t);
    req->cb = cb;
    auto* ours = new connect_request;
    ours->outer = req;
    ours->inner.data = ours;
    int rc = self.inner_.connect(&self.inner_, &ours->inner, id, address,
                                 [](raft_uv_connect* inner, uv_stream_t* stream, int status) {
                                     auto* request = static_cast<connect_request*>(inner->data);
                                     raft_uv_connect* outer = request->outer;
                                     delete request;
                                     if (status == 0) {
                                         no_delay(stream);
                                     }
                                     outer->cb(outer, stream, status);
                                 });
    if (rc != 0) {
        delete ours;
    }
    return rc;
}

void nodelay_transport::close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
    auto& self = of(t);
    self.close_cb_ = cb;
    self.inner_.close(&self.inner_, [](raft_uv_transport* inner) {
        auto& owner = of_inner(inner);
        owner.close_cb_(&owner.outer_);
    });
}

}  // namespace taskmill::broker::cluster
