//! Status codes, the per-thread last error message, and the guard every exported function
//! runs its body in: a failure or a caught panic becomes a status and a message, never an
//! unwind across the C boundary.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bertling_runtime::{Error, ErrorKind};

/// What a call returned. `BERTLING_OK` is success; every other value comes with a message from
/// `bertling_last_error_message` on the same thread.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bertling_status {
    BERTLING_OK = 0,
    BERTLING_ERR_NULL_ARGUMENT = 1,
    BERTLING_ERR_INVALID_ARGUMENT = 2,
    BERTLING_ERR_IO = 3,
    BERTLING_ERR_INVALID_MODEL = 4,
    BERTLING_ERR_UNSUPPORTED_VERSION = 5,
    BERTLING_ERR_NO_CLASSIFICATION_HEAD = 6,
    BERTLING_ERR_BUFFER_TOO_SMALL = 7,
    BERTLING_ERR_GPU = 8,
    BERTLING_ERR_CANCELLED = 9,
    BERTLING_ERR_INTERNAL = 10,
}

use bertling_status::*;

/// A failed call: its status and the message for `bertling_last_error_message`.
pub(crate) struct Failure {
    pub status: bertling_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: bertling_status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(BERTLING_ERR_NULL_ARGUMENT, format!("`{what}` is NULL; pass a valid pointer"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let status = match e.kind() {
            ErrorKind::Io => BERTLING_ERR_IO,
            ErrorKind::InvalidModel => BERTLING_ERR_INVALID_MODEL,
            ErrorKind::UnsupportedVersion => BERTLING_ERR_UNSUPPORTED_VERSION,
            ErrorKind::NoClassificationHead => BERTLING_ERR_NO_CLASSIFICATION_HEAD,
            ErrorKind::InvalidArgument => BERTLING_ERR_INVALID_ARGUMENT,
            ErrorKind::Gpu => BERTLING_ERR_GPU,
            ErrorKind::Cancelled => BERTLING_ERR_CANCELLED,
            _ => BERTLING_ERR_INTERNAL,
        };
        Failure { status, message: e.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn set_last_error(message: Option<String>) {
    // A thread being torn down has no slot any more; there is no one left to read it then.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

pub(crate) fn last_error() -> Option<String> {
    LAST_ERROR.try_with(|slot| slot.borrow().clone()).ok().flatten()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Runs a call's body: resets this thread's last error, turns a failure or a panic into its
/// status and message.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> bertling_status {
    set_last_error(None);
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return BERTLING_OK,
        Ok(Err(f)) => f,
        Err(payload) => Failure::new(
            BERTLING_ERR_INTERNAL,
            format!(
                "internal error (a panic was caught): {}; please report it",
                panic_message(&*payload)
            ),
        ),
    };
    set_last_error(Some(failure.message));
    failure.status
}

/// Runs a body that returns a value, with `fallback` on a panic (for the few functions whose
/// result is not a status).
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}
