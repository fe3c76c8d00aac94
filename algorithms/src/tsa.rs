//! TODO: tsa (being written).
