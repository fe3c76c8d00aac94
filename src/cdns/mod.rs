//! C-DNS: being written.
