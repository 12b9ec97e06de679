//! A guard for third-party parsers that panic on malformed input instead of returning an
//! error (the parquet crate does on some corrupt pages and footers: found by `tests/fuzz.rs`):
//! the panic becomes an error about that one file, and the run goes on.

/// Runs `parse`; a panic inside becomes `Err` with its message.
///
/// # Errors
/// When `parse` panicked.
pub fn catch<T>(parse: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the parser failed".to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_an_error() {
        assert_eq!(super::catch(|| 3), Ok(3));
        let err = super::catch(|| -> u8 { panic!("bad page") }).unwrap_err();
        assert!(err.contains("bad page"));
    }
}
