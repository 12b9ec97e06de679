//! Embeddings written for other tools (`curate embed`): one parquet row per readable image
//! with `path`, `image_embedding` (`list<f32>`), and, for captioned images,
//! `text_embedding` (CLIP text tower) and `sentence_embedding` (sentence encoder).

use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::atomic;
use crate::pipeline::Analysis;

fn list_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
        true,
    )
}

/// Writes the embeddings of `analysis`' readable images, atomically: CLIP image and caption
/// embeddings from its model stage, sentence embeddings of captions when it had a text
/// model. Returns the row count.
pub fn write_embeddings(path: &Path, analysis: &Analysis) -> io::Result<usize> {
    let Some(semantic) = analysis.semantic.as_ref() else {
        return Err(io::Error::other("the analysis ran without a CLIP model"));
    };
    let dim = semantic.dim;
    let sentences = analysis.captions.as_ref();
    let mut fields = vec![
        Field::new("path", DataType::Utf8, false),
        list_field("image_embedding"),
        list_field("text_embedding"),
    ];
    if sentences.is_some() {
        fields.push(list_field("sentence_embedding"));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut caption_of = vec![None; analysis.rows.len()];
    for (i, &row) in semantic.caption_rows.iter().enumerate() {
        caption_of[row as usize] = Some(i);
    }
    let mut sentence_of = vec![None; analysis.rows.len()];
    if let Some(s) = sentences {
        for (i, &row) in s.rows.iter().enumerate() {
            sentence_of[row as usize] = Some(i);
        }
    }
    let mut paths = StringBuilder::new();
    let mut images = ListBuilder::new(Float32Builder::new());
    let mut texts = ListBuilder::new(Float32Builder::new());
    let mut sentence_list = ListBuilder::new(Float32Builder::new());
    for (point, &row) in analysis.readable.iter().enumerate() {
        paths.append_value(&analysis.rows[row as usize].path);
        images
            .values()
            .append_slice(&semantic.images[point * dim..(point + 1) * dim]);
        images.append(true);
        if let Some(i) = caption_of[row as usize] {
            texts
                .values()
                .append_slice(&semantic.caption_embeddings[i * dim..(i + 1) * dim]);
            texts.append(true);
        } else {
            texts.append(false);
        }
        match (sentences, sentence_of[row as usize]) {
            (Some(s), Some(i)) => {
                sentence_list
                    .values()
                    .append_slice(&s.embeddings[i * s.dim..(i + 1) * s.dim]);
                sentence_list.append(true);
            }
            _ => sentence_list.append(false),
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(paths.finish()),
        Arc::new(images.finish()),
        Arc::new(texts.finish()),
    ];
    if sentences.is_some() {
        columns.push(Arc::new(sentence_list.finish()));
    }
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(io::Error::other)?;
    atomic::write_with(path, |out| {
        let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), None)
            .map_err(io::Error::other)?;
        writer.write(&batch).map_err(io::Error::other)?;
        writer.close().map_err(io::Error::other)?;
        Ok(())
    })?;
    Ok(analysis.readable.len())
}
