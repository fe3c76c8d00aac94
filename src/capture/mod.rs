//! Capture formats: being written.
