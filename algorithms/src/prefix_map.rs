//! TODO: prefix_map (being written).
