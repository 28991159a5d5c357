// libraft's headers, which 0.15 ships without an extern "C" guard.
#pragma once

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
