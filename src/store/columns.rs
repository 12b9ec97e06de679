//! Small helpers for reading named, typed columns out of Arrow record batches.

use arrow_array::cast::AsArray as _;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{
    BooleanArray, FixedSizeBinaryArray, FixedSizeListArray, Float32Array, Int64Array,
    PrimitiveArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};

/// A missing or mistyped column.
#[derive(Debug, thiserror::Error)]
#[error("column `{name}` is missing or not {expected}")]
pub struct ColumnError {
    name: String,
    expected: &'static str,
}

fn err(name: &str, expected: &'static str) -> ColumnError {
    ColumnError {
        name: name.to_owned(),
        expected,
    }
}

pub fn string<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| err(name, "utf8"))
}

pub fn boolean<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a BooleanArray, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(|| err(name, "bool"))
}

fn primitive<'a, T: arrow_array::types::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
    expected: &'static str,
) -> Result<&'a PrimitiveArray<T>, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| err(name, expected))
}

pub fn u64s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a UInt64Array, ColumnError> {
    primitive::<UInt64Type>(batch, name, "u64")
}

pub fn u32s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a UInt32Array, ColumnError> {
    primitive::<UInt32Type>(batch, name, "u32")
}

pub fn i64s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, ColumnError> {
    primitive::<Int64Type>(batch, name, "i64")
}

pub fn f32s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Float32Array, ColumnError> {
    primitive::<Float32Type>(batch, name, "f32")
}

pub fn fixed_binary<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a FixedSizeBinaryArray, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_fixed_size_binary_opt())
        .ok_or_else(|| err(name, "fixed-size binary"))
}

pub fn fixed_list<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a FixedSizeListArray, ColumnError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_fixed_size_list_opt())
        .ok_or_else(|| err(name, "fixed-size list"))
}

impl ColumnError {
    /// A column of the wrong shape, by name.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        err(name, "of the expected shape")
    }
}
