//! Unit tests for the C-DNS washer.
