//! TODO: truncate (being written).
