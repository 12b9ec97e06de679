//! A sentence encoder (being written).
