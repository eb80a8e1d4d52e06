//! (filled in by the renovation)
