//! ipfm's wire and data formats, byte-exact with Kubo/boxo.
//!
//! Pure: no I/O, no async, no global state. Every decoder returns an error on malformed
//! input and never allocates by a length read from the input before checking it against
//! the input's own size.

pub mod announce;
pub mod bitswap;
pub mod builder;
pub mod car;
pub mod cbor;
pub mod cid;
pub mod dagpb;
pub mod fetch;
pub mod ipns;
pub mod peer;
pub mod unixfs;
pub mod varint;

pub use ::cid::Cid;
