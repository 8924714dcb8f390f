//! The bertq server loop, shared by `bertq serve` on Linux (`boards/`) and the bare-metal
//! firmware (`firmware/`): `no_std`, no allocator, written against `embedded-io` streams.
//!
//! - [`request`]: a request once read (id, kind, text, options), whatever its wire format;
//! - [`jsonl`]: JSON Lines requests, parsed in place;
//! - [`reply`]: replies written into fixed buffers, as frames or JSON lines;
//! - [`link`]: the loop for one byte stream (a socket, a tty, a UART), over a [`link::Backend`];
//! - [`backend`]: running a request on a session ([`backend::DirectBackend`]: one session, no
//!   threads, the firmware's configuration);
//! - [`metrics`]: counters and the latency histogram (atomics, no locks);
//! - [`nb_serial`]: an `embedded-hal-nb` UART driver as an `embedded-io` stream.
//!
//! Threads, sockets, signals and the worker pool stay in `boards/`.

#![no_std]
// Failures carry their message inline (a fixed-capacity string): boxing them, as these lints
// suggest, would allocate on the error path, which must not allocate either.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod jsonl;
pub mod link;
pub mod metrics;
pub mod nb_serial;
pub mod reply;
pub mod request;
