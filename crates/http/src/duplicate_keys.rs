//! Finding a key a JSON object repeats. serde_json keeps the last value of a repeated key in a
//! map and serde's derive refuses a repeated field only in a struct it decodes directly, so
//! `{"quantity": 1, "quantity": 1000}` meant one thing to a client's validator (the first)
//! and another to orderly (the last). Every body is walked once for repeats before it is
//! decoded; keys are compared as decoded, so `"a\u0062"` repeats `"ab"`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The path of the first key repeated within one object of `json` (`lines[0].quantity`), or
/// `None` when there is none or `json` is not JSON (the decoder then says what is wrong).
pub fn first_duplicate(json: &[u8]) -> Option<String> {
    let mut walk = Walk {
        path: String::new(),
        found: None,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let _ = (&mut walk).deserialize(&mut deserializer);
    walk.found
}

/// Walks a document, keeping the path to where it is.
struct Walk {
    path: String,
    found: Option<String>,
}

impl<'de> DeserializeSeed<'de> for &mut Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let outer = self.path.len();
        let mut index = 0usize;
        loop {
            self.path.truncate(outer);
            let _ = write!(self.path, "[{index}]");
            if items.next_element_seed(&mut *self)?.is_none() {
                break;
            }
            index += 1;
        }
        self.path.truncate(outer);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let outer = self.path.len();
        let mut seen = Seen::default();
        while let Some(Key(key)) = entries.next_key::<Key<'de>>()? {
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(&key);
            if !seen.insert(key) {
                self.found = Some(self.path.clone());
                return Err(serde::de::Error::custom("duplicate key"));
            }
            entries.next_value_seed(&mut *self)?;
            self.path.truncate(outer);
        }
        Ok(())
    }
}

/// The keys of one object so far: a short list searched in turn (an object of a body has a
/// handful; measured, this halved the walk's cost against a set), a set past 16 keys (so an
/// object of thousands costs no more than a set's lookups).
#[derive(Default)]
struct Seen<'de> {
    few: Vec<Cow<'de, str>>,
    many: HashSet<Cow<'de, str>>,
}

impl<'de> Seen<'de> {
    /// Adds `key`; `false` if it was there already.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if self.many.is_empty() && self.few.len() < 16 {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        self.many.extend(self.few.drain(..));
        self.many.insert(key)
    }
}

/// An object's key, borrowed from the body when it holds no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object's key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_found_with_its_path() {
        let order = br#"{"lines":[{"sku":"MUG-BLUE","quantity":1,"quantity":1000}]}"#;
        assert_eq!(first_duplicate(order).as_deref(), Some("lines[0].quantity"));
        assert_eq!(
            first_duplicate(br#"{"a":1,"b":{"c":[1,{"d":2}]},"a":2}"#).as_deref(),
            Some("a")
        );
        assert_eq!(
            first_duplicate(br#"[{"x":1},{"y":[{"z":1,"z":2}]}]"#).as_deref(),
            Some("[1].y[0].z")
        );
    }

    #[test]
    fn keys_are_compared_as_decoded() {
        assert_eq!(
            first_duplicate(br#"{"ab":1,"a\u0062":2}"#).as_deref(),
            Some("ab")
        );
    }

    #[test]
    fn a_repeat_among_many_keys_is_found() {
        let mut object: Vec<String> = (0..1_000).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(
            first_duplicate(format!("{{{}}}", object.join(",")).as_bytes()),
            None
        );
        object.push("\"k500\":0".into());
        assert_eq!(
            first_duplicate(format!("{{{}}}", object.join(",")).as_bytes()).as_deref(),
            Some("k500")
        );
    }

    #[test]
    fn the_same_key_in_different_objects_is_no_repeat() {
        assert_eq!(
            first_duplicate(br#"{"lines":[{"sku":"A"},{"sku":"B"}],"sku":"C"}"#),
            None
        );
        assert_eq!(first_duplicate(b"{\"a\":"), None);
        assert_eq!(first_duplicate(b"42"), None);
    }
}
