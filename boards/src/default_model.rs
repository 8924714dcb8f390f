//! The default model, linked into the binary so `bertq run` works with nothing else installed:
//! Rampart PII NER (see models/README.md for provenance and licence).

/// Forces the alignment the zero-copy loader needs on bytes from `include_bytes!`.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

static DEFAULT_MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/rampart-pii.bertq"));

/// The bytes of the built-in model.
pub fn bytes() -> &'static [u8] {
    &DEFAULT_MODEL.0
}

pub const NAME: &str = "built in";
