//! Loading a model's weights from a `.safetensors` file into a burn module, strictly: every
//! parameter of the module must be found with the right shape, and every tensor in the file
//! must be used (apart from names the caller says to ignore), or loading fails with one line
//! naming what is missing, mis-shaped or left over.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file the model needs is not there.
    #[error("{dir}: missing {file} (a model folder needs {needs})")]
    MissingFile {
        /// The model folder.
        dir: PathBuf,
        /// The missing file name.
        file: String,
        /// What the folder needs, in words.
        needs: String,
    },
    /// A configuration or tokenizer file could not be read or understood.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The folder holds a different kind of model than the one asked for.
    #[error("{dir}: {message}")]
    WrongKind {
        /// The model folder.
        dir: PathBuf,
        /// What it is and what was expected.
        message: String,
    },
    /// The weights do not fit the architecture the configuration describes.
    #[error("{path}: {message}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// Missing / mis-shaped / unused tensors, or why the file could not be read.
        message: String,
    },
}

/// How many names to list per kind of problem before "and N more".
const LISTED: usize = 4;

fn list(names: &[String]) -> String {
    let text = names
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        format!("{text} and {} more", names.len() - LISTED)
    } else {
        text
    }
}

/// Loads `file` into `module`. `remap` rewrites the file's tensor names (regex, replacement)
/// into the module's parameter paths; tensors whose file name matches one of `ignore`
/// (regexes, e.g. `position_ids` buffers) may be left unused. PyTorch layouts are adapted
/// (linear weights transposed, norm `weight`/`bias` → `gamma`/`beta`).
pub fn load_safetensors<M: Module>(
    module: &mut M,
    file: &Path,
    remap: &[(&str, &str)],
    ignore: &[&str],
) -> Result<(), ModelError> {
    let fail = |message: String| ModelError::Weights {
        path: file.to_owned(),
        message,
    };
    // The store reads the header lazily; a truncated or garbled file must be an error here,
    // not a panic later.
    check_header(file).map_err(fail)?;
    let remapper = KeyRemapper::from_patterns(remap.to_vec())
        .map_err(|err| fail(format!("bad key pattern: {err}")))?;
    let mut store = SafetensorsStore::from_file(file)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remapper)
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|err| fail(format!("cannot read the weights: {err}")))?;
    let ignore: Vec<regex::Regex> = ignore
        .iter()
        .map(|p| regex::Regex::new(p).expect("ignore patterns are literals in the code"))
        .collect();
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
    let unused: Vec<String> = result
        .unused
        .iter()
        .filter(|name| !ignore.iter().any(|re| re.is_match(name)))
        .cloned()
        .collect();
    let errors: Vec<String> = result
        .errors
        .iter()
        .map(|err| match err {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "{path} is {:?} in the file, the config needs {:?}",
                found.as_slice(),
                expected.as_slice()
            ),
            other => other.to_string(),
        })
        .collect();
    let mut problems = Vec::new();
    if !errors.is_empty() {
        problems.push(format!("{} wrong: {}", errors.len(), list(&errors)));
    }
    if !missing.is_empty() {
        problems.push(format!("{} missing: {}", missing.len(), list(&missing)));
    }
    if !unused.is_empty() {
        problems.push(format!("{} unused: {}", unused.len(), list(&unused)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(format!(
            "the weights do not match the model configuration: tensors {}",
            problems.join("; ")
        )))
    }
}

/// An open safetensors file with its parsed header.
struct Header {
    file: std::fs::File,
    /// Bytes of the JSON header (data starts at `8 + len`).
    len: u64,
    /// Size of the whole file.
    size: u64,
    json: serde_json::Value,
}

/// Opens `file` and reads its header: an 8-byte length, then that much JSON.
fn read_header(file: &Path) -> Result<Header, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).map_err(|err| format!("cannot open: {err}"))?;
    let size = f
        .metadata()
        .map_err(|err| format!("cannot read: {err}"))?
        .len();
    let mut len = [0_u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| "not a safetensors file (shorter than its header)".to_owned())?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 || 8 + len > size {
        return Err("not a safetensors file, or truncated (bad header length)".to_owned());
    }
    let mut header = vec![0_u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|_| "truncated safetensors header".to_owned())?;
    let json = serde_json::from_slice(&header)
        .map_err(|err| format!("not a safetensors file (header is not JSON: {err})"))?;
    Ok(Header {
        file: f,
        len,
        size,
        json,
    })
}

/// Checks that `file` is a complete safetensors file: an 8-byte header length, a JSON header
/// of that length, and data covering every tensor's offsets.
fn check_header(file: &Path) -> Result<(), String> {
    let header = read_header(file)?;
    let data = header.size - 8 - header.len;
    let end = header
        .json
        .as_object()
        .ok_or("not a safetensors file (header is not a JSON object)")?
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if end > data {
        return Err(format!(
            "truncated: the tensors need {end} bytes of data, the file has {data}"
        ));
    }
    Ok(())
}

/// Reads the scalar `f32` tensor `name` (such as CLIP's `logit_scale`) straight from a
/// safetensors file; `None` when it is absent or not a one-element `F32`/`F16`/`BF16`.
#[must_use]
pub fn read_scalar(file: &Path, name: &str) -> Option<f32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut header = read_header(file).ok()?;
    let entry = header.json.get(name)?;
    let dtype = entry.get("dtype")?.as_str()?;
    let start = entry.get("data_offsets")?.get(0)?.as_u64()?;
    let end = entry.get("data_offsets")?.get(1)?.as_u64()?;
    header
        .file
        .seek(SeekFrom::Start(8 + header.len + start))
        .ok()?;
    let mut bytes = vec![0_u8; usize::try_from(end.checked_sub(start)?).ok()?];
    header.file.read_exact(&mut bytes).ok()?;
    match (dtype, bytes.as_slice()) {
        ("F32", &[a, b, c, d]) => Some(f32::from_le_bytes([a, b, c, d])),
        ("F16", &[a, b]) => Some(half::f16::from_le_bytes([a, b]).to_f32()),
        ("BF16", &[a, b]) => Some(half::bf16::from_le_bytes([a, b]).to_f32()),
        _ => None,
    }
}
