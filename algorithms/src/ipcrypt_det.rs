//! TODO: ipcrypt_det (being written).
