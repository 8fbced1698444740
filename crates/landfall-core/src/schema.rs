//! Declared field types, the metadata columns, and schema fingerprints.
//!
//! Timestamps are microseconds in UTC: the unit Spark, Athena, DuckDB and pyarrow all read as a
//! timestamp (nanoseconds trip Spark and Athena; milliseconds lose precision some producers have).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};

use crate::config::MetadataColumn;

/// One field of a declared JSON schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredField {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Parse a type written in a sink config: `int64`, `decimal(18,2)`, `list<string>`,
/// `struct<city:string,zip:string>`, `map<string,int64>` ...
pub fn parse_field_type(text: &str) -> Result<DataType, String> {
    let mut p = TypeParser {
        s: text.as_bytes(),
        pos: 0,
    };
    let t = p.parse_type()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!(
            "unexpected `{}` after the type in `{text}`",
            &text[p.pos..]
        ));
    }
    Ok(t)
}

struct TypeParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn ident(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at position {}", c as char, self.pos))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn number(&mut self) -> Result<u32, String> {
        let n = self.ident();
        n.parse()
            .map_err(|_| format!("expected a number, found `{n}`"))
    }

    fn parse_type(&mut self) -> Result<DataType, String> {
        let name = self.ident().to_ascii_lowercase();
        Ok(match name.as_str() {
            "bool" | "boolean" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" => DataType::Float32,
            "float64" | "double" => DataType::Float64,
            "string" => DataType::Utf8,
            "binary" => DataType::Binary,
            "date" => DataType::Date32,
            "timestamp" => timestamp_type(),
            "decimal" => {
                self.expect(b'(')?;
                let precision = self.number()?;
                self.expect(b',')?;
                let scale = self.number()?;
                self.expect(b')')?;
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(format!(
                        "decimal({precision},{scale}) needs 1 <= precision <= 38 and scale <= precision"
                    ));
                }
                DataType::Decimal128(precision as u8, scale as i8)
            }
            "list" => {
                self.expect(b'<')?;
                let item = self.parse_type()?;
                self.expect(b'>')?;
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields = Vec::new();
                loop {
                    let fname = self.ident();
                    if fname.is_empty() {
                        return Err("expected a field name in struct<...>".into());
                    }
                    self.expect(b':')?;
                    let ftype = self.parse_type()?;
                    fields.push(Field::new(fname, ftype, true));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'>') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err("expected `,` or `>` in struct<...>".into()),
                    }
                }
                DataType::Struct(Fields::from(fields))
            }
            "map" => {
                self.expect(b'<')?;
                let key = self.parse_type()?;
                if key != DataType::Utf8 {
                    return Err("map keys must be string (JSON object keys are strings)".into());
                }
                self.expect(b',')?;
                let value = self.parse_type()?;
                self.expect(b'>')?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            "" => return Err("missing type".into()),
            other => return Err(format!("unknown type `{other}`")),
        })
    }
}

/// Arrow field for a metadata column.
pub fn metadata_field(c: MetadataColumn) -> Field {
    let name = c.column_name();
    match c {
        MetadataColumn::Topic => Field::new(name, DataType::Utf8, false),
        MetadataColumn::Partition => Field::new(name, DataType::Int32, false),
        MetadataColumn::Offset => Field::new(name, DataType::Int64, false),
        MetadataColumn::Timestamp => Field::new(name, timestamp_type(), true),
        MetadataColumn::Key => Field::new(name, DataType::Binary, true),
        MetadataColumn::Headers => Field::new(name, headers_type(), true),
    }
}

/// Kafka headers keep their order and may repeat a key, so a list of structs, not a map.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(header_fields()),
        false,
    )))
}

pub fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// Payload schema of a declared JSON format.
pub fn declared_schema(fields: &[DeclaredField]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, f.data_type.clone(), f.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// Payload schema of the raw format.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
    ]))
}

/// A stable fingerprint of a schema (field names, types, nullability, order), so DAGs can tell
/// whether two batches share a schema without opening files.
pub fn fingerprint(schema: &Schema) -> String {
    let mut h = Sha256::new();
    for f in schema.fields() {
        hash_field(&mut h, f);
    }
    format!("sha256:{}", hex::encode(&h.finalize()[..16]))
}

fn hash_field(h: &mut Sha256, f: &Field) {
    h.update(f.name().as_bytes());
    h.update([0, f.is_nullable() as u8]);
    // Display of a DataType is stable within an arrow major version; nested fields are hashed
    // by name and type so renaming a struct member changes the fingerprint.
    h.update(format!("{}", f.data_type()).as_bytes());
    h.update([0xff]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_types() {
        assert_eq!(parse_field_type("int64").unwrap(), DataType::Int64);
        assert_eq!(
            parse_field_type("decimal(18, 2)").unwrap(),
            DataType::Decimal128(18, 2)
        );
        let t = parse_field_type("list<struct<city:string, zip:int32>>").unwrap();
        let DataType::List(item) = t else {
            panic!("{t:?}")
        };
        let DataType::Struct(fields) = item.data_type() else {
            panic!()
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].data_type(), &DataType::Int32);
        assert!(matches!(
            parse_field_type("map<string,float64>").unwrap(),
            DataType::Map(..)
        ));
        assert_eq!(parse_field_type("timestamp").unwrap(), timestamp_type());
    }

    #[test]
    fn rejects_bad_types() {
        for bad in [
            "int65",
            "decimal(40,2)",
            "list<int64",
            "struct<>",
            "map<int64,string>",
            "int64 x",
            "",
        ] {
            assert!(parse_field_type(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn fingerprint_changes_with_schema() {
        let a = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
        let b = Schema::new(vec![Field::new("a", DataType::Float64, true)]);
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
