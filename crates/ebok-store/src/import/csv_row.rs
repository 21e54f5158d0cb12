//! A CSV row as a serde map from header names to field texts. Unlike the csv crate's own
//! deserializer it remembers which field it handed out last, so that an error raised by a
//! field's type (a PESEL checksum, an amount) still names its column.

use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Deserialize `row` by `headers`; on failure the index of the field being read (or `None`
/// when the error is not about one field) and the reason.
pub(super) fn from_row<'de, T: de::Deserialize<'de>>(
    headers: &'de csv::StringRecord,
    row: &'de csv::StringRecord,
) -> Result<T, (Option<usize>, String)> {
    let mut last = None;
    let result = T::deserialize(RowDeserializer {
        headers,
        row,
        last: &mut last,
    });
    result.map_err(|e| {
        let message = e.to_string();
        // "missing field `x`" comes after all fields were read: name x, not the last one.
        match message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            Some(field) => (
                headers.iter().position(|h| h == field),
                format!("missing column {field:?}"),
            ),
            None => (last, message),
        }
    })
}

struct RowDeserializer<'de, 'a> {
    headers: &'de csv::StringRecord,
    row: &'de csv::StringRecord,
    last: &'a mut Option<usize>,
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(RowMap {
            headers: self.headers,
            row: self.row,
            next: 0,
            last: self.last,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct RowMap<'de, 'a> {
    headers: &'de csv::StringRecord,
    row: &'de csv::StringRecord,
    next: usize,
    last: &'a mut Option<usize>,
}

impl<'de> MapAccess<'de> for RowMap<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(name) = self.headers.get(self.next) else {
            return Ok(None);
        };
        *self.last = Some(self.next);
        seed.deserialize(BorrowedStrDeserializer::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let text = self.row.get(self.next).unwrap_or("");
        self.next += 1;
        seed.deserialize(Field(text))
    }
}

/// One field's text: empty is `None` for an optional value, numbers and booleans are
/// parsed, enums are chosen by name, everything else sees the text.
struct Field<'de>(&'de str);

impl Field<'_> {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, Error> {
        self.0
            .parse()
            .map_err(|_| de::Error::custom(format!("{:?} is not {what}", self.0)))
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)+) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.$visit(self.parse::<$ty>($what)?)
            }
        )+
    };
}

impl<'de> de::Deserializer<'de> for Field<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(self.parse("true or false")?)
    }

    parse_number! {
        deserialize_i8 => visit_i8: i8, "a whole number";
        deserialize_i16 => visit_i16: i16, "a whole number";
        deserialize_i32 => visit_i32: i32, "a whole number";
        deserialize_i64 => visit_i64: i64, "a whole number";
        deserialize_u8 => visit_u8: u8, "a whole number ≥ 0";
        deserialize_u16 => visit_u16: u16, "a whole number ≥ 0";
        deserialize_u32 => visit_u32: u32, "a whole number ≥ 0";
        deserialize_u64 => visit_u64: u64, "a whole number ≥ 0";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Colour {
        Red,
        Blue,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        name: String,
        n: u32,
        colour: Colour,
        note: Option<String>,
        flag: Option<bool>,
    }

    fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn rows_by_header() {
        let h = record(&["n", "name", "colour", "note", "flag"]);
        let r = record(&["7", "x", "blue", "", "true"]);
        let row: Row = from_row(&h, &r).unwrap();
        assert_eq!(
            row,
            Row {
                name: "x".into(),
                n: 7,
                colour: Colour::Blue,
                note: None,
                flag: Some(true),
            }
        );
        // An optional column left out.
        let h = record(&["n", "name", "colour"]);
        let r = record(&["7", "x", "red"]);
        let row: Row = from_row(&h, &r).unwrap();
        assert_eq!((row.note, row.colour), (None, Colour::Red));
    }

    #[test]
    fn errors_name_the_field() {
        let h = record(&["name", "n", "colour"]);
        let e = from_row::<Row>(&h, &record(&["x", "-1", "red"])).unwrap_err();
        assert_eq!(e, (Some(1), "\"-1\" is not a whole number ≥ 0".into()));
        let e = from_row::<Row>(&h, &record(&["x", "1", "green"])).unwrap_err();
        assert_eq!(e.0, Some(2));
        assert!(e.1.contains("unknown variant `green`"), "{}", e.1);
        let e = from_row::<Row>(&record(&["name", "n"]), &record(&["x", "1"])).unwrap_err();
        assert_eq!(e, (None, "missing column \"colour\"".into()));
    }
}
