//! Cache files that carry their own checksum: the payload followed by its 32-byte BLAKE3
//! hash. A file whose hash does not match (a flipped bit, a truncation, another program's
//! file under the name) reads as absent, so the caller recomputes it and writes it again;
//! damaged bytes are never served. Writes are atomic (see [`super::atomic`]).

use std::io;
use std::path::Path;

use super::atomic;

/// Length of the trailing checksum.
const HASH: usize = 32;

/// Writes `payload` and its checksum to `path`, atomically.
pub fn write(path: &Path, payload: &[u8]) -> io::Result<()> {
    let hash = blake3::hash(payload);
    atomic::write_with(path, |w| {
        use std::io::Write as _;
        w.write_all(payload)?;
        w.write_all(hash.as_bytes())
    })
}

/// The payload of the sealed file at `path`; `None` when it is missing, unreadable or does
/// not match its checksum.
#[must_use]
pub fn read(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    let split = bytes.len().checked_sub(HASH)?;
    if blake3::hash(&bytes[..split]).as_bytes() != &bytes[split..] {
        return None;
    }
    bytes.truncate(split);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_or_cut_file_reads_as_absent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.bin");
        write(&path, b"some cached numbers").expect("write");
        assert_eq!(read(&path).as_deref(), Some(&b"some cached numbers"[..]));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(read(&path), None);
        write(&path, b"some cached numbers").expect("write");
        let len = std::fs::metadata(&path).expect("meta").len();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(len - 1)
            .expect("truncate");
        assert_eq!(read(&path), None);
        std::fs::write(&path, b"short").expect("write");
        assert_eq!(read(&path), None);
    }
}
