//! Bloom filters (DNSBLOOM): being written.
