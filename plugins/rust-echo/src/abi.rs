//! The parts of taskmill/plugin.h (ABI 1.1) this plugin uses, written from
//! the header: same field order, same C types, `#[repr(C)]`. Fields are
//! only ever appended to these structs, so a prefix of a newer host's
//! struct is still this one; `struct_size` says how much the writer filled.

use std::os::raw::{c_char, c_void};

pub const TM_ABI_MAJOR: u32 = 1;
pub const TM_ABI_MINOR: u32 = 1;
pub const TM_ABI_VERSION: u32 = (TM_ABI_MAJOR << 16) | TM_ABI_MINOR;

pub type TmStatus = i32;
pub const TM_OK: TmStatus = 0;
pub const TM_RETRY: TmStatus = 1;
pub const TM_FAIL: TmStatus = 2;
pub const TM_CANCELLED: TmStatus = 3;

pub const TM_E_TOO_LARGE: i32 = -2;
pub const TM_E_INTERNAL: i32 = -6;

pub const TM_LOG_INFO: i32 = 2;
pub const TM_LOG_ERROR: i32 = 4;

pub const TM_HANDLER_IDEMPOTENT: u32 = 1 << 1;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct TmBytes {
    pub data: *const u8,
    pub size: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct TmStr {
    pub data: *const c_char,
    pub size: usize,
}

/// Opaque host state for one call.
#[repr(C)]
pub struct TmCtx {
    _private: [u8; 0],
}

#[repr(C)]
pub struct TmTask {
    pub struct_size: u32,
    pub attempt: u32,
    pub task_id: TmStr,
    pub handler: TmStr,
    pub payload: TmBytes,
    pub deadline_unix_ms: i64,
    pub parent_task_id: TmStr,
}

#[repr(C)]
pub struct TmError {
    pub struct_size: u32,
    pub code: i32,
    pub message: TmStr,
    pub retry_after_ms: i64,
}

/// Opaque here: this plugin never spawns, so it needs no layout.
#[repr(C)]
pub struct TmSpawnRequest {
    _private: [u8; 0],
}

type Ctx = *mut TmCtx;

#[repr(C)]
pub struct TmHostApi {
    pub struct_size: u32,
    pub abi_version: u32,
    // ABI 1.0
    pub log_enabled: Option<unsafe extern "C" fn(Ctx, i32) -> i32>,
    pub log: Option<unsafe extern "C" fn(Ctx, i32, TmStr)>,
    pub is_cancelled: Option<unsafe extern "C" fn(Ctx) -> i32>,
    pub report_progress: Option<unsafe extern "C" fn(Ctx, f64, TmStr) -> i32>,
    pub checkpoint_save: Option<unsafe extern "C" fn(Ctx, TmBytes) -> i32>,
    pub checkpoint_load: Option<unsafe extern "C" fn(Ctx, *mut TmBytes) -> i32>,
    pub spawn: Option<unsafe extern "C" fn(Ctx, *const TmSpawnRequest, *mut TmStr) -> i32>,
    pub set_result: Option<unsafe extern "C" fn(Ctx, TmBytes) -> i32>,
    pub set_error: Option<unsafe extern "C" fn(Ctx, *const TmError) -> i32>,
    // ABI 1.1
    pub limit: Option<unsafe extern "C" fn(Ctx, i32) -> u64>,
}

pub type TmExecuteFn =
    unsafe extern "C" fn(*mut c_void, *const TmTask, *const TmHostApi, Ctx) -> TmStatus;

#[repr(C)]
pub struct TmHandler {
    pub struct_size: u32,
    pub flags: u32,
    pub name: *const c_char,
    pub payload_version: u32,
    pub execute: Option<TmExecuteFn>,
    pub default_queue: *const c_char,
    pub default_timeout_ms: i64,
    pub default_retries: i32,
}

#[repr(C)]
pub struct TmPlugin {
    pub struct_size: u32,
    pub abi_version: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub handler_count: u32,
    pub handlers: *const *const TmHandler,
    pub init:
        Option<unsafe extern "C" fn(*const TmHostApi, Ctx, TmBytes, *mut *mut c_void) -> TmStatus>,
    pub shutdown: Option<unsafe extern "C" fn(*mut c_void)>,
}

// The descriptors are immutable statics that only point at other statics,
// so sharing them between the host's threads is safe.
unsafe impl Sync for TmHandler {}
unsafe impl Sync for TmPlugin {}

/// A pointer to a handler, in a static array the host reads.
#[repr(transparent)]
pub struct HandlerRef(pub *const TmHandler);
unsafe impl Sync for HandlerRef {}

/// plugin.h's TM_HAS_FIELD: true if the struct at `base`, whose writer set
/// `struct_size`, reaches the end of `field` (a pointer into it, from
/// std::ptr::addr_of!).
pub fn has_field<S, F>(base: *const S, struct_size: u32, field: *const F) -> bool {
    let end = field as usize - base as usize + std::mem::size_of::<F>();
    struct_size as usize >= end
}
