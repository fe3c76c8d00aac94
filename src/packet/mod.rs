//! Packet locating and patching: being written.
