//! numpy's `.npy` files: embedding matrices made by other tools (`<f4`, `<f2`, `<f8`, read as
//! f32) and neighbour index arrays (`<i4`, `<u4`, `<i8`). One- and two-dimensional arrays
//! in C order only, little-endian only; header versions 1.0, 2.0 and 3.0.
//!
//! A file is read once, straight into the returned vector (a multi-GB matrix is never held
//! twice), and written atomically ([`super::atomic`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;

use super::atomic;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Bytes converted per step when the stored type is not the returned one.
const CHUNK_BYTES: usize = 1 << 20;
/// A header longer than this is not a plain array's header (numpy's own limit is 10 000).
const MAX_HEADER: usize = 1 << 20;

/// Why a `.npy` file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        cause: io::Error,
    },
    /// The file does not start with the `.npy` magic.
    #[error("{}: not a NumPy .npy file (it does not start with \\x93NUMPY)", path.display())]
    NotNpy {
        /// The file.
        path: PathBuf,
    },
    /// A header version this reader does not know.
    #[error("{}: unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary could not be understood.
    #[error("{}: malformed .npy header: {reason}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// An element type other than the ones this reader (or this call) accepts.
    #[error("{}: dtype `{dtype}` is not supported here (expected {expected})", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The header's `descr`.
        dtype: String,
        /// The accepted types.
        expected: &'static str,
    },
    /// A big-endian array.
    #[error("{}: dtype `{dtype}` is big-endian; save it little-endian (`a.astype(a.dtype.newbyteorder('<'))`)", path.display())]
    BigEndian {
        /// The file.
        path: PathBuf,
        /// The header's `descr`.
        dtype: String,
    },
    /// A column-major array.
    #[error("{}: the array is in Fortran order; save it in C order (`np.ascontiguousarray(a)`)", path.display())]
    FortranOrder {
        /// The file.
        path: PathBuf,
    },
    /// The data after the header is not as long as the shape says.
    #[error("{}: shape {shape:?} of {dtype} needs {expected} data bytes but the file holds {actual}{}", path.display(), if actual < expected { " (truncated)" } else { "" })]
    Length {
        /// The file.
        path: PathBuf,
        /// The header's shape.
        shape: Vec<usize>,
        /// The header's `descr`.
        dtype: String,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes after the header.
        actual: u64,
    },
    /// A shape with the wrong number of dimensions.
    #[error("{}: shape {shape:?} is not {expected}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The header's (or the caller's) shape.
        shape: Vec<usize>,
        /// What was needed.
        expected: &'static str,
    },
    /// Data handed to a writer does not fill its shape.
    #[error("{}: shape {shape:?} holds {expected} values but {actual} were given", path.display())]
    DataLength {
        /// The file.
        path: PathBuf,
        /// The shape asked for.
        shape: Vec<usize>,
        /// Values the shape holds.
        expected: usize,
        /// Values given.
        actual: usize,
    },
}

/// The element types read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    F2,
    F4,
    F8,
    I4,
    U4,
    I8,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Self::F2 => "<f2",
            Self::F4 => "<f4",
            Self::F8 => "<f8",
            Self::I4 => "<i4",
            Self::U4 => "<u4",
            Self::I8 => "<i8",
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F2 => 2,
            Self::F4 | Self::I4 | Self::U4 => 4,
            Self::F8 | Self::I8 => 8,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F2 | Self::F4 | Self::F8)
    }
}

const FLOATS: &str = "<f4, <f2 or <f8";
const INTEGERS: &str = "<i4, <u4 or <i8";

/// Reads a 1-D or 2-D float array (`<f4`, `<f2` or `<f8`) as f32: its shape and its values
/// in C order.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let (mut file, header) = open(path, FLOATS, Dtype::is_float)?;
    let count = header.count();
    let data = match header.dtype {
        Dtype::F4 => {
            let mut data = vec![0f32; count];
            read_exact(&mut file, path, bytemuck::cast_slice_mut(&mut data))?;
            // A no-op on little-endian machines.
            data.iter_mut()
                .for_each(|v| *v = f32::from_le_bytes(v.to_ne_bytes()));
            data
        }
        Dtype::F2 => read_converted(&mut file, path, count, 2, |b| {
            f16::from_le_bytes([b[0], b[1]]).to_f32()
        })?,
        Dtype::F8 => read_converted(&mut file, path, count, 8, |b| {
            f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32
        })?,
        Dtype::I4 | Dtype::U4 | Dtype::I8 => unreachable!("rejected by `open`"),
    };
    Ok((header.shape, data))
}

/// Reads a 2-D float array as f32: rows, columns and the values row by row.
pub fn read_f32_2d(path: &Path) -> Result<(usize, usize, Vec<f32>), NpyError> {
    let (shape, data) = read_f32(path)?;
    match shape[..] {
        [rows, cols] => Ok((rows, cols, data)),
        _ => Err(NpyError::Shape {
            path: path.to_owned(),
            shape,
            expected: "2-D (rows × dimensions)",
        }),
    }
}

/// Reads a 1-D or 2-D integer array (`<i4`, `<u4` or `<i8`, e.g. neighbour indices) as
/// i64: its shape and its values in C order.
pub fn read_i64(path: &Path) -> Result<(Vec<usize>, Vec<i64>), NpyError> {
    let (mut file, header) = open(path, INTEGERS, |d| !d.is_float())?;
    let count = header.count();
    let data = match header.dtype {
        Dtype::I4 => read_converted(&mut file, path, count, 4, |b| {
            i64::from(i32::from_le_bytes(b.try_into().expect("4-byte chunk")))
        })?,
        Dtype::U4 => read_converted(&mut file, path, count, 4, |b| {
            i64::from(u32::from_le_bytes(b.try_into().expect("4-byte chunk")))
        })?,
        Dtype::I8 => read_converted(&mut file, path, count, 8, |b| {
            i64::from_le_bytes(b.try_into().expect("8-byte chunk"))
        })?,
        Dtype::F2 | Dtype::F4 | Dtype::F8 => unreachable!("rejected by `open`"),
    };
    Ok((header.shape, data))
}

/// Writes `data` (C order) as a `<f4` array of `shape` (1-D or 2-D), atomically.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    write(path, Dtype::F4, shape, data, f32::to_le_bytes)
}

/// Writes `data` (C order) as a `<i4` array of `shape` (1-D or 2-D), atomically.
pub fn write_i32(path: &Path, shape: &[usize], data: &[i32]) -> Result<(), NpyError> {
    write(path, Dtype::I4, shape, data, i32::to_le_bytes)
}

/// Writes `data` (C order) as a `<u4` array of `shape` (1-D or 2-D), atomically.
pub fn write_u32(path: &Path, shape: &[usize], data: &[u32]) -> Result<(), NpyError> {
    write(path, Dtype::U4, shape, data, u32::to_le_bytes)
}

/// Writes `data` (C order) as a `<i8` array of `shape` (1-D or 2-D), atomically.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<(), NpyError> {
    write(path, Dtype::I8, shape, data, i64::to_le_bytes)
}

/// What a header says.
#[derive(Debug)]
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
}

impl Header {
    fn count(&self) -> usize {
        self.shape.iter().product()
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> NpyError + '_ {
    move |cause| NpyError::Io {
        path: path.to_owned(),
        cause,
    }
}

fn read_exact(file: &mut File, path: &Path, buf: &mut [u8]) -> Result<(), NpyError> {
    file.read_exact(buf).map_err(io_error(path))
}

/// Reads `count` elements of `size` bytes each, converting them in chunks.
fn read_converted<T>(
    file: &mut File,
    path: &Path,
    count: usize,
    size: usize,
    convert: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, NpyError> {
    let mut out = Vec::with_capacity(count);
    let per_chunk = (CHUNK_BYTES / size).max(1);
    let mut buf = vec![0u8; per_chunk.min(count) * size];
    let mut left = count;
    while left > 0 {
        let n = per_chunk.min(left);
        let bytes = &mut buf[..n * size];
        read_exact(file, path, bytes)?;
        out.extend(bytes.chunks_exact(size).map(&convert));
        left -= n;
    }
    Ok(out)
}

/// Opens `path`, parses and checks its header (dtype accepted by `accept`, C order, 1-D or
/// 2-D, data exactly as long as the shape needs) and leaves the file at the data.
fn open(
    path: &Path,
    expected: &'static str,
    accept: impl Fn(Dtype) -> bool,
) -> Result<(File, Header), NpyError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let file_len = file.metadata().map_err(io_error(path))?.len();
    let not_npy = || NpyError::NotNpy {
        path: path.to_owned(),
    };
    let mut prefix = [0u8; 8];
    if file_len < 10 {
        return Err(not_npy());
    }
    read_exact(&mut file, path, &mut prefix)?;
    if &prefix[..6] != MAGIC {
        return Err(not_npy());
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let header_len = match (major, minor) {
        (1, 0) => {
            let mut len = [0u8; 2];
            read_exact(&mut file, path, &mut len)?;
            usize::from(u16::from_le_bytes(len))
        }
        (2 | 3, 0) => {
            let mut len = [0u8; 4];
            read_exact(&mut file, path, &mut len)?;
            u32::from_le_bytes(len) as usize
        }
        _ => {
            return Err(NpyError::Version {
                path: path.to_owned(),
                major,
                minor,
            });
        }
    };
    let malformed = |reason: String| NpyError::Header {
        path: path.to_owned(),
        reason,
    };
    let data_start = (if major == 1 { 10 } else { 12 } + header_len) as u64;
    if header_len > MAX_HEADER || data_start > file_len {
        return Err(malformed(format!(
            "header length {header_len} does not fit the file ({file_len} bytes)"
        )));
    }
    // The header dictionary (a Python literal) is parsed by npyz, from the bytes read so
    // far and the text, which the bound above keeps small.
    let mut header = Vec::with_capacity(12 + header_len);
    header.extend_from_slice(&prefix);
    header.extend_from_slice(&if major == 1 {
        (header_len as u16).to_le_bytes().to_vec()
    } else {
        (header_len as u32).to_le_bytes().to_vec()
    });
    let mut text = vec![0u8; header_len];
    read_exact(&mut file, path, &mut text)?;
    if nesting(&text) > MAX_NESTING {
        return Err(malformed(format!(
            "brackets nested deeper than {MAX_NESTING}"
        )));
    }
    header.extend_from_slice(&python2_longs(&text));
    let parsed = npyz::NpyHeader::from_reader(io::Cursor::new(header))
        .map_err(|e| malformed(e.to_string()))?;
    let descr = match parsed.dtype() {
        npyz::DType::Plain(type_str) => type_str.to_string(),
        other => {
            return Err(NpyError::Dtype {
                path: path.to_owned(),
                dtype: other.descr(),
                expected,
            });
        }
    };
    let fortran = parsed.order() == npyz::Order::Fortran;
    let shape = parsed
        .shape()
        .iter()
        .map(|&n| {
            usize::try_from(n).map_err(|_| malformed(format!("shape entry {n} is too large")))
        })
        .collect::<Result<Vec<usize>, _>>()?;

    let little =
        descr.starts_with('<') || (descr.starts_with('=') && cfg!(target_endian = "little"));
    if descr.starts_with('>') || (descr.starts_with('=') && cfg!(target_endian = "big")) {
        return Err(NpyError::BigEndian {
            path: path.to_owned(),
            dtype: descr,
        });
    }
    let dtype = match (little, descr.get(1..).unwrap_or_default()) {
        (true, "f2") => Some(Dtype::F2),
        (true, "f4") => Some(Dtype::F4),
        (true, "f8") => Some(Dtype::F8),
        (true, "i4") => Some(Dtype::I4),
        (true, "u4") => Some(Dtype::U4),
        (true, "i8") => Some(Dtype::I8),
        _ => None,
    }
    .filter(|&d| accept(d))
    .ok_or_else(|| NpyError::Dtype {
        path: path.to_owned(),
        dtype: descr.clone(),
        expected,
    })?;
    if !(1..=2).contains(&shape.len()) {
        return Err(NpyError::Shape {
            path: path.to_owned(),
            shape,
            expected: "1-D or 2-D",
        });
    }
    if fortran && shape.len() == 2 && shape.iter().all(|&n| n > 1) {
        return Err(NpyError::FortranOrder {
            path: path.to_owned(),
        });
    }
    let expected_bytes = shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &n| acc.checked_mul(n as u64));
    let actual = file_len - data_start;
    if expected_bytes != Some(actual) {
        return Err(NpyError::Length {
            path: path.to_owned(),
            shape,
            dtype: descr,
            expected: expected_bytes.unwrap_or(u64::MAX),
            actual,
        });
    }
    Ok((file, Header { dtype, shape }))
}

/// Brackets nested deeper than this are not a plain array's header (and a recursive parser
/// must not be handed a megabyte of them).
const MAX_NESTING: usize = 16;

/// The deepest nesting of brackets in `text`, outside quotes.
fn nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut quote) = (0_usize, 0_usize, None);
    for &c in text {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'(' | b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            // Inside a quote, or any other byte.
            _ => {}
        }
    }
    deepest
}

/// `text` with Python 2's long-integer suffix dropped (`(3L,)` → `(3,)`, as numpy wrote
/// shapes under Python 2), which npyz's parser does not take; the header stays as long (a
/// space replaces each suffix).
fn python2_longs(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    for i in 1..out.len() {
        let next = out.get(i + 1).copied().unwrap_or(b' ');
        if out[i] == b'L' && out[i - 1].is_ascii_digit() && matches!(next, b',' | b')' | b' ') {
            out[i] = b' ';
        }
    }
    out
}

/// The header bytes (magic to newline) for `dtype` and `shape`, padded so the data starts
/// at a multiple of 64 bytes.
fn header_bytes(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    let version: u8 = if u16::try_from(dict.len() + 1 + 10).is_ok() {
        1
    } else {
        2
    };
    let prefix = if version == 1 { 10 } else { 12 };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    dict.extend(std::iter::repeat_n(' ', total - prefix - dict.len() - 1));
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

fn write<T: Copy, const N: usize>(
    path: &Path,
    dtype: Dtype,
    shape: &[usize],
    data: &[T],
    to_le: impl Fn(T) -> [u8; N],
) -> Result<(), NpyError> {
    if !(1..=2).contains(&shape.len()) {
        return Err(NpyError::Shape {
            path: path.to_owned(),
            shape: shape.to_vec(),
            expected: "1-D or 2-D",
        });
    }
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err(NpyError::DataLength {
            path: path.to_owned(),
            shape: shape.to_vec(),
            expected,
            actual: data.len(),
        });
    }
    let header = header_bytes(dtype, shape);
    atomic::write_with(path, |out| {
        out.write_all(&header)?;
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        for chunk in data.chunks(CHUNK_BYTES / N) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|&v| to_le(v)));
            out.write_all(&buf)?;
        }
        Ok(())
    })
    .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file made of a hand-written header (as numpy would write it) and raw data.
    fn handmade(path: &Path, version: u8, dict: &str, data: &[u8]) {
        let prefix = if version == 1 { 10 } else { 12 };
        let mut dict = dict.to_owned();
        while !(prefix + dict.len() + 1).is_multiple_of(64) {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[version, 0]);
        if version == 1 {
            bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).expect("write test file");
    }

    #[test]
    fn f32_round_trips_in_1d_and_2d() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_f32(&path, &[3, 4], &data).expect("write");
        let bytes = std::fs::read(&path).expect("read back");
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(
            (bytes.len() - 48) % 64,
            0,
            "data starts on a 64-byte boundary"
        );
        assert_eq!(read_f32(&path).expect("read"), (vec![3, 4], data.clone()));
        assert_eq!(read_f32_2d(&path).expect("read"), (3, 4, data.clone()));

        write_f32(&path, &[12], &data).expect("write");
        assert_eq!(read_f32(&path).expect("read"), (vec![12], data));
        let err = read_f32_2d(&path).expect_err("1-D is not a matrix");
        assert!(
            matches!(err, NpyError::Shape { ref shape, .. } if shape == &[12]),
            "{err}"
        );
        assert!(err.to_string().contains("m.npy"), "{err}");

        write_f32(&path, &[0, 512], &[]).expect("write empty");
        assert_eq!(read_f32_2d(&path).expect("read"), (0, 512, vec![]));
    }

    #[test]
    fn integers_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("knn.npy");
        write_i32(&path, &[2, 3], &[0, -1, 2, i32::MAX, 4, i32::MIN]).expect("write");
        assert_eq!(
            read_i64(&path).expect("read"),
            (
                vec![2, 3],
                vec![0, -1, 2, i64::from(i32::MAX), 4, i64::from(i32::MIN)]
            )
        );
        write_u32(&path, &[2], &[7, u32::MAX]).expect("write");
        assert_eq!(
            read_i64(&path).expect("read"),
            (vec![2], vec![7, i64::from(u32::MAX)])
        );
        write_i64(&path, &[1, 1], &[i64::MIN]).expect("write");
        assert_eq!(read_i64(&path).expect("read"), (vec![1, 1], vec![i64::MIN]));
        let err = read_f32(&path).expect_err("integers are not embeddings");
        assert!(
            matches!(err, NpyError::Dtype { ref dtype, .. } if dtype == "<i8"),
            "{err}"
        );
    }

    #[test]
    fn handwritten_v1_f2_and_f8_and_v2_v3_headers_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("h.npy");
        let halves: Vec<u8> = [1.0f32, -2.5, 0.125, 65504.0]
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        handmade(
            &path,
            1,
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }",
            &halves,
        );
        assert_eq!(
            read_f32(&path).expect("f2"),
            (vec![2, 2], vec![1.0, -2.5, 0.125, 65504.0])
        );

        let doubles: Vec<u8> = [0.1f64, 1e300, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // Other key order, double quotes, no trailing comma, old-style `3L`.
        handmade(
            &path,
            1,
            "{\"shape\": (3L,), \"fortran_order\": False, \"descr\": \"<f8\"}",
            &doubles,
        );
        let (shape, data) = read_f32(&path).expect("f8");
        assert_eq!(shape, vec![3]);
        assert!(data[1].is_infinite(), "f64 beyond f32 range becomes inf");
        assert_eq!(vec![data[0], data[2]], vec![0.1f32, -3.0]);

        let floats: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        for version in [2, 3] {
            handmade(
                &path,
                version,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
                &floats,
            );
            assert_eq!(
                read_f32(&path).expect("v2/v3"),
                (vec![1, 2], vec![1.0, 2.0])
            );
        }
        // A Fortran-order flag on a single row is harmless (the layout is the same).
        handmade(
            &path,
            1,
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }",
            &floats,
        );
        assert_eq!(
            read_f32(&path).expect("1 row"),
            (vec![1, 2], vec![1.0, 2.0])
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.npy");
        let check = |message: &str| {
            let err = read_f32(&path).expect_err(message).to_string();
            assert!(err.contains(message), "{err:?} lacks {message:?}");
            assert!(err.contains("bad.npy"), "{err:?} names no file");
        };
        std::fs::write(&path, b"PAR1 this is a parquet file").expect("write");
        check("not a NumPy .npy file");
        std::fs::write(&path, b"\x93NUMPY\x04\x00\x10\x00").expect("write");
        check("version 4.0");
        let dict_cases = [
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }",
                4,
                "big-endian",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                4,
                "Fortran order",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
                5,
                "needs 24 data bytes but the file holds 20 (truncated)",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                5,
                "needs 16 data bytes but the file holds 20",
            ),
            (
                "{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }",
                2,
                "dtype `<i2` is not supported here (expected <f4, <f2 or <f8)",
            ),
            (
                "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                4,
                "dtype `[('a', '<f4'), ('b', '<f4')",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }",
                4,
                "shape [2, 2, 1] is not 1-D or 2-D",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), ",
                4,
                "malformed .npy header",
            ),
            (
                "{'descr': '<f4', 'shape': (2, 2), }",
                4,
                "malformed .npy header",
            ),
            (
                &format!(
                    "{{'descr': '<f4', 'x': {}1{}, }}",
                    "(".repeat(5000),
                    ")".repeat(5000)
                ),
                4,
                "nested deeper than 16",
            ),
        ];
        for (dict, floats, message) in dict_cases {
            handmade(&path, 1, dict, &vec![0u8; floats * 4]);
            check(message);
        }
        let err = read_f32(&dir.path().join("missing.npy")).expect_err("no file");
        assert!(matches!(err, NpyError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing.npy"), "{err}");
    }

    #[test]
    fn writers_refuse_data_that_does_not_fill_the_shape() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.npy");
        let err = write_f32(&path, &[2, 3], &[0.0; 5]).expect_err("5 ≠ 6");
        assert!(matches!(
            err,
            NpyError::DataLength {
                expected: 6,
                actual: 5,
                ..
            }
        ));
        let err = write_i32(&path, &[1, 1, 1], &[0]).expect_err("3-D");
        assert!(matches!(err, NpyError::Shape { .. }));
        assert!(!path.exists());
    }

    #[test]
    fn headers_pad_the_data_to_64_bytes() {
        let header = header_bytes(Dtype::F4, &[100_000, 512]);
        assert_eq!(&header[6..8], &[1, 0]);
        assert_eq!(header.len() % 64, 0);
        assert!(header.ends_with(b"\n"));
    }
}
