//! TODO: enumerate (being written).
