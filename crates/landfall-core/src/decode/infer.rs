//! The inferred JSON format: every JSON object lands as a row, whatever its types.
//!
//! A chunk's schema is inferred from its records with one widening rule (documented in
//! `docs/configuration.md#inferred-schemas`): a field whose values cannot share an Arrow type
//! without losing something becomes a `string` column in which strings are stored as they are and
//! every other value as its compact JSON text. The same rule covers every conflict at every depth
//! (a list's items, a struct's members), integers that float64 would round, objects that are
//! empty in every record, and nesting deeper than Parquet readers accept. The arrays are then
//! built from the same parsed values the schema was inferred from, so decoding cannot disagree
//! with inference: once a record is a JSON object, nothing can reject it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringBuilder,
    StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::{Map, Value};

use crate::config::MetadataColumn;

/// Containers nested deeper than this (a top-level field's value is level 1, its members or items
/// level 2, ...) are stored as JSON text at this level. parquet-rs refuses to read back a file
/// whose Arrow schema nests about 62 levels (the flatbuffer verifier's depth limit), and query
/// engines plan deep schemas poorly; 32 is far beyond real payloads.
pub const MAX_NESTING: usize = 32;

/// Integers beyond this magnitude are not all exactly representable as float64.
const F64_EXACT_INT: u64 = 1 << 53;

/// What the values seen at one place of the schema have in common.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    /// Only nulls (or absent).
    Null,
    Bool,
    Num(Num),
    /// Strings as they are, anything else as JSON text.
    Text,
    List(Box<Ty>),
    Struct(BTreeMap<String, Ty>),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Num {
    /// A number written with a fraction or exponent.
    float: bool,
    /// An integer float64 cannot hold exactly (|n| > 2^53).
    wide_int: bool,
    /// An integer int64 cannot hold (> i64::MAX).
    huge_int: bool,
}

impl Num {
    fn of(n: &serde_json::Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num {
                wide_int: i.unsigned_abs() > F64_EXACT_INT,
                ..Num::default()
            }
        } else if n.is_u64() {
            Num {
                wide_int: true,
                huge_int: true,
                ..Num::default()
            }
        } else {
            Num {
                float: true,
                ..Num::default()
            }
        }
    }

    fn join(self, o: Num) -> Num {
        Num {
            float: self.float || o.float,
            wide_int: self.wide_int || o.wide_int,
            huge_int: self.huge_int || o.huge_int,
        }
    }

    /// The narrowest of int64, float64 and text that holds every value exactly.
    fn column(self) -> Col {
        if self.huge_int || (self.float && self.wide_int) {
            Col::Text
        } else if self.float {
            Col::Float
        } else {
            Col::Int
        }
    }
}

impl Ty {
    fn of(v: &Value, level: usize) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Number(n) => Ty::Num(Num::of(n)),
            Value::String(_) => Ty::Text,
            Value::Array(_) | Value::Object(_) if level >= MAX_NESTING => Ty::Text,
            Value::Array(items) => {
                let mut item = Ty::Null;
                for i in items {
                    item.absorb(i, level + 1);
                }
                Ty::List(Box::new(item))
            }
            Value::Object(o) => {
                let mut fields = BTreeMap::new();
                for (k, v) in o {
                    fields.insert(k.clone(), Ty::of(v, level + 1));
                }
                Ty::Struct(fields)
            }
        }
    }

    /// Widen `self` so that it also holds `v`, a value at nesting `level`.
    fn absorb(&mut self, v: &Value, level: usize) {
        match (&mut *self, v) {
            (_, Value::Null) | (Ty::Text, _) => {}
            (Ty::Null, v) => *self = Ty::of(v, level),
            (Ty::Bool, Value::Bool(_)) => {}
            (Ty::Num(a), Value::Number(n)) => *a = a.join(Num::of(n)),
            (Ty::List(item), Value::Array(items)) => {
                for i in items {
                    item.absorb(i, level + 1);
                }
            }
            (Ty::Struct(fields), Value::Object(o)) => absorb_object(fields, o, level + 1),
            // Every other pair (a list and a scalar, an object and a list, a number and a
            // string, ...) has no common Arrow type: the rule.
            _ => *self = Ty::Text,
        }
    }

    fn column(&self) -> Col {
        match self {
            Ty::Null => Col::Null,
            Ty::Bool => Col::Bool,
            Ty::Num(n) => n.column(),
            Ty::Text => Col::Text,
            Ty::List(item) => Col::List(Box::new(item.column())),
            // An object without keys in every record: Parquet cannot store an empty struct.
            Ty::Struct(fields) if fields.is_empty() => Col::Text,
            Ty::Struct(fields) => Col::Struct(
                fields
                    .iter()
                    .map(|(k, t)| (k.clone(), k.clone(), t.column()))
                    .collect(),
            ),
        }
    }
}

/// Widen the fields of an object type with the members of `o`, whose values are at `level`.
/// The record's own members (level 1) are columns, named by [`column_name`].
fn absorb_object(fields: &mut BTreeMap<String, Ty>, o: &Map<String, Value>, level: usize) {
    for (k, v) in o {
        let renamed = if level == 1 { column_name(k) } else { None };
        let name = renamed.as_deref().unwrap_or(k);
        match fields.get_mut(name) {
            Some(t) => t.absorb(v, level),
            None => {
                fields.insert(name.to_string(), Ty::of(v, level));
            }
        }
    }
}

/// A resolved column: how to build it.
#[derive(Debug, Clone, PartialEq)]
enum Col {
    Null,
    Bool,
    Int,
    Float,
    Text,
    List(Box<Col>),
    /// (column name, JSON key, column) per member.
    Struct(Vec<(String, String, Col)>),
}

impl Col {
    fn data_type(&self) -> DataType {
        match self {
            Col::Null => DataType::Null,
            Col::Bool => DataType::Boolean,
            Col::Int => DataType::Int64,
            Col::Float => DataType::Float64,
            Col::Text => DataType::Utf8,
            Col::List(item) => DataType::List(Arc::new(Field::new("item", item.data_type(), true))),
            Col::Struct(members) => DataType::Struct(fields_of(members)),
        }
    }

    /// Build the array of this column from one value per row (`None`: absent). Every value fits
    /// the column (the column was inferred from them); the arrays are still checked on assembly,
    /// so a bug here is an error for the chunk, not a panic.
    fn build(&self, values: &[Option<&Value>]) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Col::Null => new_null_array(&DataType::Null, values.len()),
            Col::Bool => Arc::new(BooleanArray::from_iter(
                values.iter().map(|v| v.and_then(Value::as_bool)),
            )),
            Col::Int => Arc::new(Int64Array::from_iter(
                values.iter().map(|v| v.and_then(Value::as_i64)),
            )),
            Col::Float => Arc::new(Float64Array::from_iter(
                values.iter().map(|v| v.and_then(Value::as_f64)),
            )),
            Col::Text => {
                let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
                let mut scratch = Vec::new();
                for v in values {
                    match v {
                        None | Some(Value::Null) => b.append_null(),
                        Some(Value::String(s)) => b.append_value(s),
                        Some(other) => {
                            scratch.clear();
                            serde_json::to_writer(&mut scratch, other)
                                .expect("a JSON value serializes");
                            b.append_value(
                                std::str::from_utf8(&scratch).expect("serde_json writes UTF-8"),
                            );
                        }
                    }
                }
                Arc::new(b.finish())
            }
            Col::List(item) => {
                let mut lengths = Vec::with_capacity(values.len());
                let mut valid = Vec::with_capacity(values.len());
                let mut items: Vec<Option<&Value>> = Vec::new();
                for v in values {
                    match v {
                        Some(Value::Array(a)) => {
                            lengths.push(a.len());
                            valid.push(true);
                            items.extend(a.iter().map(Some));
                        }
                        _ => {
                            lengths.push(0);
                            valid.push(false);
                        }
                    }
                }
                let field = Arc::new(Field::new("item", item.data_type(), true));
                Arc::new(ListArray::try_new(
                    field,
                    OffsetBuffer::from_lengths(lengths),
                    item.build(&items)?,
                    nulls(valid),
                )?)
            }
            Col::Struct(members) => {
                let objects: Vec<Option<&Map<String, Value>>> = values
                    .iter()
                    .map(|v| v.and_then(Value::as_object))
                    .collect();
                let columns = members
                    .iter()
                    .map(|(_, key, col)| {
                        let vs: Vec<Option<&Value>> =
                            objects.iter().map(|o| o.and_then(|o| o.get(key))).collect();
                        col.build(&vs)
                    })
                    .collect::<Result<_, _>>()?;
                let valid = objects.iter().map(Option::is_some).collect();
                Arc::new(StructArray::try_new(
                    fields_of(members),
                    columns,
                    nulls(valid),
                )?)
            }
        })
    }
}

fn fields_of(members: &[(String, String, Col)]) -> Fields {
    members
        .iter()
        .map(|(name, _, col)| Field::new(name, col.data_type(), true))
        .collect()
}

fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    if valid.iter().all(|&v| v) {
        None
    } else {
        Some(NullBuffer::from(valid))
    }
}

/// The column name of a top-level JSON key: a key that is one or more `_` followed by a metadata
/// column's name (`_offset`, `__offset`, ...) gets one more leading `_`, whether or not that
/// metadata column is enabled. The mapping is injective, so no two keys share a column and no
/// payload field shadows or is shadowed by a metadata column.
pub fn column_name(key: &str) -> Option<String> {
    let rest = key.trim_start_matches('_');
    if rest.len() == key.len() {
        return None;
    }
    MetadataColumn::ALL
        .iter()
        .any(|c| &c.column_name()[1..] == rest)
        .then(|| format!("_{key}"))
}

/// Infer the schema of a chunk of JSON objects and build its payload batch.
pub fn objects_to_batch(objects: &[Map<String, Value>]) -> Result<RecordBatch, ArrowError> {
    let mut fields = BTreeMap::new();
    for o in objects {
        absorb_object(&mut fields, o, 1);
    }
    // Column name -> JSON key, for the renamed top-level keys.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for o in objects {
        for k in o.keys() {
            if let Some(name) = column_name(k) {
                keys.entry(name).or_insert_with(|| k.clone());
            }
        }
    }
    let columns: Vec<(String, String, Col)> = fields
        .iter()
        .map(|(name, t)| {
            let key = keys.get(name).cloned().unwrap_or_else(|| name.clone());
            (name.clone(), key, t.column())
        })
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, key, col)| {
            let vs: Vec<Option<&Value>> = objects.iter().map(|o| o.get(key)).collect();
            col.build(&vs)
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields_of(&columns))),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(objects.len())),
    )
}
