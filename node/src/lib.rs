//! ipfm node library.
