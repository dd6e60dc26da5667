//! ipfm's storage.
