//! TODO: ipcrypt_pfx (being written).
