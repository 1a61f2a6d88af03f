//! Development tools (work in progress).
