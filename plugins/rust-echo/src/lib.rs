//! rust-echo: a taskmill plugin in Rust, built against the C ABI of
//! taskmill/plugin.h (its types are copied in abi.rs), std only.
//!
//! Handler `rust.echo` answers `{"payload": <the payload as sent>,
//! "bytes": <its size in bytes>}`. The payload "panic" (a msgpack string)
//! makes it panic on purpose: the panic is caught before it can reach the
//! host and the task fails with the panic's message, while the worker lives.

mod abi;
mod msgpack;

use std::any::Any;
use std::mem::size_of;
use std::os::raw::{c_char, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{addr_of, null};

use abi::*;

/// The msgpack string "panic".
const PANIC_PAYLOAD: &[u8] = b"\xa5panic";

/// The host functions for one call in progress.
struct Call<'a> {
    host: &'a TmHostApi,
    ctx: *mut TmCtx,
}

impl<'a> Call<'a> {
    fn log(&self, level: i32, message: &str) {
        if let Some(log) = self.host.log {
            unsafe { log(self.ctx, level, tm_str(message)) }
        }
    }

    fn cancelled(&self) -> bool {
        match self.host.is_cancelled {
            Some(is_cancelled) => unsafe { is_cancelled(self.ctx) != 0 },
            None => false,
        }
    }

    /// 0 or the host's negative TM_E_* code.
    fn set_result(&self, result: &[u8]) -> i32 {
        let bytes = TmBytes {
            data: result.as_ptr(),
            size: result.len(),
        };
        match self.host.set_result {
            Some(set_result) => unsafe { set_result(self.ctx, bytes) },
            None => TM_E_INTERNAL,
        }
    }

    fn set_error(&self, message: &str) {
        let error = TmError {
            struct_size: size_of::<TmError>() as u32,
            code: 0,
            message: tm_str(message),
            retry_after_ms: -1,
        };
        if let Some(set_error) = self.host.set_error {
            unsafe { set_error(self.ctx, &error) };
        }
    }
}

/// A borrowed tm_str over `s`; the host copies what it keeps.
fn tm_str(s: &str) -> TmStr {
    TmStr {
        data: s.as_ptr() as *const c_char,
        size: s.len(),
    }
}

/// The task's payload, borrowed for the call (empty if the host's tm_task
/// has no payload field or no payload).
unsafe fn payload_of(task: &TmTask) -> &[u8] {
    let p = task.payload;
    if !has_field(task, task.struct_size, addr_of!(task.payload)) || p.data.is_null() || p.size == 0
    {
        return &[];
    }
    std::slice::from_raw_parts(p.data, p.size)
}

/// {"payload": payload, "bytes": its length}; an empty payload echoes as nil.
fn echo_result(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 24);
    msgpack::map_header(&mut out, 2);
    msgpack::str(&mut out, "payload");
    if payload.is_empty() {
        out.push(msgpack::NIL);
    } else {
        out.extend_from_slice(payload); // already one msgpack value
    }
    msgpack::str(&mut out, "bytes");
    msgpack::uint(&mut out, payload.len() as u64);
    out
}

fn echo(call: &Call, payload: &[u8]) -> TmStatus {
    if call.cancelled() {
        return TM_CANCELLED;
    }
    if payload == PANIC_PAYLOAD {
        panic!("rust.echo was asked to panic");
    }
    call.log(TM_LOG_INFO, &format!("echoing {} bytes", payload.len()));
    match call.set_result(&echo_result(payload)) {
        0 => TM_OK,
        TM_E_TOO_LARGE => {
            call.set_error("the result is over the host's size limit");
            TM_FAIL
        }
        code => {
            call.set_error(&format!("could not store the result (host error {})", code));
            TM_RETRY
        }
    }
}

/// The text a panic was raised with (panic! with a literal gives a &str,
/// with format arguments a String).
fn panic_message(cause: &(dyn Any + Send)) -> &str {
    if let Some(s) = cause.downcast_ref::<&str>() {
        s
    } else if let Some(s) = cause.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// tm_execute_fn: no panic may unwind into the host, so the handler runs
/// inside catch_unwind and a panic becomes TM_FAIL with its message.
unsafe extern "C" fn echo_execute(
    _state: *mut c_void,
    task: *const TmTask,
    host: *const TmHostApi,
    ctx: *mut TmCtx,
) -> TmStatus {
    if task.is_null() || host.is_null() {
        return TM_FAIL;
    }
    let call = Call { host: &*host, ctx };
    let payload = payload_of(&*task);
    match panic::catch_unwind(AssertUnwindSafe(|| echo(&call, payload))) {
        Ok(status) => status,
        Err(cause) => {
            let message = format!("panic: {}", panic_message(&*cause));
            call.log(TM_LOG_ERROR, &message);
            call.set_error(&message);
            TM_FAIL
        }
    }
}

static ECHO_HANDLER: TmHandler = TmHandler {
    struct_size: size_of::<TmHandler>() as u32,
    flags: TM_HANDLER_IDEMPOTENT,
    name: b"rust.echo\0".as_ptr() as *const c_char,
    payload_version: 1,
    execute: Some(echo_execute),
    default_queue: null(), // "default"
    default_timeout_ms: 0, // none
    default_retries: -1,   // the broker's
};

static HANDLERS: [HandlerRef; 1] = [HandlerRef(&ECHO_HANDLER)];

static PLUGIN: TmPlugin = TmPlugin {
    struct_size: size_of::<TmPlugin>() as u32,
    abi_version: TM_ABI_VERSION,
    name: b"rust-echo\0".as_ptr() as *const c_char,
    version: b"1.0.0\0".as_ptr() as *const c_char,
    handler_count: 1,
    handlers: HANDLERS.as_ptr() as *const *const TmHandler,
    init: None,
    shutdown: None,
};

/// The entry point the host looks up (TM_PLUGIN_ENTRY_SYMBOL). It has no
/// side effects: it only returns the static descriptor.
#[no_mangle]
pub extern "C" fn taskmill_plugin_v1() -> *const TmPlugin {
    &PLUGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_embeds_the_payload_and_counts_its_bytes() {
        // {"payload": "hi", "bytes": 3}
        let expected = b"\x82\xa7payload\xa2hi\xa5bytes\x03";
        assert_eq!(echo_result(b"\xa2hi"), expected.to_vec());
    }

    #[test]
    fn an_empty_payload_echoes_as_nil() {
        assert_eq!(
            echo_result(b""),
            b"\x82\xa7payload\xc0\xa5bytes\x00".to_vec()
        );
    }

    #[test]
    fn panic_message_reads_literal_and_formatted_panics() {
        let literal = panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*literal), "plain");
        let n = 7;
        let formatted = panic::catch_unwind(|| panic!("n = {}", n)).unwrap_err();
        assert_eq!(panic_message(&*formatted), "n = 7");
    }

    #[test]
    fn the_descriptor_has_the_c_layout_of_plugin_h() {
        // gcc's sizeof of the plugin.h structs on 64-bit Linux.
        assert_eq!(size_of::<TmTask>(), 80);
        assert_eq!(size_of::<TmHandler>(), 56);
        assert_eq!(size_of::<TmPlugin>(), 56);
        assert_eq!(size_of::<TmHostApi>(), 88);
        assert_eq!(size_of::<TmError>(), 32);
    }
}
