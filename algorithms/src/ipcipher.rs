//! TODO: ipcipher (being written).
