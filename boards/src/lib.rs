//! The device program's library: the server (`bertq serve`), the host client (`bertq client`),
//! board profiles and `bertq doctor`. `main.rs` is the command line around it.

pub mod client;
pub mod doctor;
pub mod profiles;
pub mod serve;

use bertq_runtime::Model;

/// The session length to use: `requested` if it is in range, else the model's maximum.
pub fn session_length(model: &Model<'_>, requested: Option<usize>) -> Result<usize, String> {
    let max = model.max_sequence_length();
    match requested {
        None => Ok(max),
        Some(n) if (2..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "--max-length {n} is out of range (2..={max} for this model)"
        )),
    }
}

/// Names and other strings from a model file (or a client) made safe for a terminal or a log:
/// control characters (terminal escape sequences start with one) and the Unicode direction
/// overrides become `\u{..}` escapes; everything else is kept.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The most threads one inference may be split over (`--threads`).
pub const MAX_THREADS: usize = 256;
/// The longest windowed input a session may be sized for (`--max-input-tokens`).
pub const MAX_INPUT_TOKENS: usize = 1 << 18;

/// Set to `0` to keep the model file's weight layout whatever the kernel table (by default the
/// encoder's int8 weights are converted once at load to the table's own layout when it has a
/// faster one: `Model::repacked`).
pub const REPACK_ENV: &str = "BERTQ_REPACK";

/// Whether [`REPACK_ENV`] allows converting the weights at load.
pub fn repack_enabled() -> bool {
    std::env::var(REPACK_ENV).map_or(true, |v| v != "0")
}

/// `value` if it is within `lo..=hi`, else an error naming the option.
pub fn in_range(name: &str, value: usize, lo: usize, hi: usize) -> Result<usize, String> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{name} {value} is out of range ({lo}..={hi})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_terminal_controls_only() {
        assert_eq!(
            printable("rampart-pii ünïcode 日本"),
            "rampart-pii ünïcode 日本"
        );
        assert_eq!(
            printable("evil\u{1b}[2J\u{1b}]0;title\u{7}\r\n\u{9b}x\u{202e}"),
            "evil\\u{1b}[2J\\u{1b}]0;title\\u{7}\\u{d}\\u{a}\\u{9b}x\\u{202e}"
        );
    }
}
