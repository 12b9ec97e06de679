//! CLIP's byte-level BPE tokenizer (being written).
