//! Keep-lists: UTF-8 text, one relative path per line (`/`-separated), in scan order.

use std::io::{self, Write as _};
use std::path::Path;

use super::atomic;

/// Writes the paths to `path`, atomically.
pub fn write<'a>(path: &Path, kept: impl IntoIterator<Item = &'a str>) -> io::Result<usize> {
    atomic::write_with(path, |out| {
        let mut count = 0;
        for rel in kept {
            out.write_all(rel.as_bytes())?;
            out.write_all(b"\n")?;
            count += 1;
        }
        Ok(count)
    })
}

/// Reads a keep-list back (blank lines skipped).
pub fn read(path: &Path) -> io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}
