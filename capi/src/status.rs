//! Status codes and their messages.

use core::ffi::{c_char, c_int, CStr};

/// Success.
pub const BERTQ_OK: c_int = 0;
/// A required pointer is NULL (or NULL with a nonzero length).
pub const BERTQ_ERR_NULL: c_int = 1;
/// An argument is out of range (a length beyond the address space, overlapping buffers, a
/// label id beyond the model's labels).
pub const BERTQ_ERR_ARGUMENT: c_int = 2;
/// The bytes are not a bertq model (too short or wrong magic).
pub const BERTQ_ERR_NOT_A_MODEL: c_int = 3;
/// The model file's format version is not supported by this library.
pub const BERTQ_ERR_MODEL_VERSION: c_int = 4;
/// The model is shorter (or longer) than its header says: truncated.
pub const BERTQ_ERR_MODEL_TRUNCATED: c_int = 5;
/// The model's checksum does not match: damaged bytes.
pub const BERTQ_ERR_MODEL_CHECKSUM: c_int = 6;
/// The model bytes do not start at a 4-byte aligned address (64 is recommended).
pub const BERTQ_ERR_MODEL_ALIGNMENT: c_int = 7;
/// The model's header, tensors, vocabulary or labels are inconsistent.
pub const BERTQ_ERR_MODEL_INVALID: c_int = 8;
/// `max_seq` is out of range (2 to the model's maximum sequence length).
pub const BERTQ_ERR_MAX_SEQ: c_int = 9;
/// The session memory is not 64-byte aligned.
pub const BERTQ_ERR_MEMORY_ALIGNMENT: c_int = 10;
/// The session memory is smaller than `bertq_session_bytes` says.
pub const BERTQ_ERR_MEMORY_TOO_SMALL: c_int = 11;
/// Not an open session (NULL-checked, misaligned, closed, or not from `bertq_open`).
pub const BERTQ_ERR_SESSION: c_int = 12;
/// The text is not valid UTF-8.
pub const BERTQ_ERR_UTF8: c_int = 13;
/// The output buffer is too small; `*out_len` is the size needed.
pub const BERTQ_ERR_BUFFER_TOO_SMALL: c_int = 14;
/// The input is longer than the session takes (its `max_input` tokens for windowed runs, or
/// one window where windows are not possible); never cut silently.
pub const BERTQ_ERR_TOO_LONG: c_int = 15;
/// An option is invalid (unknown aggregation or function, stride too large for the window,
/// a stride with aggregation `none` or with `truncate`).
pub const BERTQ_ERR_OPTION: c_int = 16;
/// Windows would produce more results than the session holds (large stride or `top_k`).
pub const BERTQ_ERR_TOO_MANY_WINDOWS: c_int = 17;
/// Fill-mask: the text needs 1 to 16 `[MASK]` tokens.
pub const BERTQ_ERR_MASKS: c_int = 18;
/// The call does not fit the model's task (question answering takes `bertq_run_qa*`, other
/// tasks a text).
pub const BERTQ_ERR_WRONG_TASK: c_int = 19;
/// Question answering: an empty question or context.
pub const BERTQ_ERR_QUESTION: c_int = 20;
/// Token ids or types out of range for the model.
pub const BERTQ_ERR_INVALID_INPUT: c_int = 21;
/// Not supported on this CPU or build (e.g. a kernel table by name).
pub const BERTQ_ERR_UNSUPPORTED: c_int = 22;
/// An internal error (a bug): reported instead of unwinding into C.
pub const BERTQ_ERR_INTERNAL: c_int = 23;

const MESSAGES: [&CStr; 24] = [
    c"ok",
    c"a required pointer is NULL",
    c"an argument is out of range (length, overlapping buffers or label id)",
    c"not a bertq model (too short or bad magic bytes)",
    c"unsupported bertq model format version",
    c"model bytes are truncated (length differs from the header)",
    c"model checksum mismatch (damaged bytes)",
    c"model bytes must start at a 4-byte aligned address (64 recommended)",
    c"invalid model (header, tensors, vocabulary or labels)",
    c"max_seq out of range (2 to the model's maximum sequence length)",
    c"session memory must be 64-byte aligned",
    c"session memory is smaller than bertq_session_bytes",
    c"not an open session",
    c"text is not valid UTF-8",
    c"output buffer too small (*out_len is the size needed)",
    c"input longer than the session takes",
    c"invalid option",
    c"too many windows for the session's result slots (use a smaller stride or top_k)",
    c"fill-mask needs 1 to 16 [MASK] tokens in the text",
    c"the call does not match the model's task",
    c"question answering needs a non-empty question and context",
    c"token ids or types out of range",
    c"not supported on this CPU or build",
    c"internal error",
];

/// A static, NUL-terminated English message for `status` (`"unknown status"` for codes this
/// library does not return).
#[no_mangle]
pub extern "C" fn bertq_status_str(status: c_int) -> *const c_char {
    usize::try_from(status)
        .ok()
        .and_then(|i| MESSAGES.get(i))
        .copied()
        .unwrap_or(c"unknown status")
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_message() {
        assert_eq!(MESSAGES.len() as c_int, BERTQ_ERR_INTERNAL + 1);
        let s = |i| {
            // SAFETY: the function returns static NUL-terminated strings.
            let c = unsafe { CStr::from_ptr(bertq_status_str(i)) };
            c.to_str().unwrap()
        };
        assert_eq!(s(BERTQ_OK), "ok");
        assert_eq!(s(BERTQ_ERR_UTF8), "text is not valid UTF-8");
        assert_eq!(s(-1), "unknown status");
        assert_eq!(s(999), "unknown status");
    }
}
