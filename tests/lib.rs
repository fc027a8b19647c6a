//! Shared helpers for the end-to-end suite live in `suite/`; this library is intentionally empty.
