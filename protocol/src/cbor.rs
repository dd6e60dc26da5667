//! Minimal, strict DAG-CBOR: the subset ipfm needs (IPNS record data, CAR headers).
//!
//! `encode` always produces the canonical form DAG-CBOR requires (shortest integer
//! encodings, definite lengths, map keys sorted by length then bytewise), so a value has
//! exactly one encoding. `decode` accepts only that form, which makes signatures over
//! encoded data unambiguous: decode → encode gives back the input bytes.
//!
//! Not supported (rejected by `decode`): floats, tags other than 42, undefined, simple
//! values, non-string map keys, indefinite lengths.

use ::cid::Cid;

/// Maximum nesting of arrays, maps and links accepted by `decode`.
pub const MAX_DEPTH: usize = 16;

/// The CBOR tag DAG-CBOR uses for CIDs.
const CID_TAG: u64 = 42;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

const SIMPLE_FALSE: u8 = 20;
const SIMPLE_TRUE: u8 = 21;
const SIMPLE_NULL: u8 = 22;

/// A DAG-CBOR value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A non-negative integer.
    Unsigned(u64),
    /// The negative integer `-1 - n` (CBOR major type 1 stores `n`).
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    /// String-keyed map (DAG-CBOR allows no other key type). The order of the entries is
    /// irrelevant for encoding: `encode` sorts them canonically; `decode` returns them in
    /// canonical order.
    Map(Vec<(String, Value)>),
    /// A CID link (tag 42).
    Link(Cid),
    Bool(bool),
    Null,
}

impl Value {
    /// The value under `key` if `self` is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_unsigned(&self) -> Option<u64> {
        match self {
            Value::Unsigned(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_link(&self) -> Option<&Cid> {
        match self {
            Value::Link(cid) => Some(cid),
            _ => None,
        }
    }
}

/// Errors of strict DAG-CBOR decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CborError {
    #[error("input ended early")]
    Truncated,
    #[error("{0} bytes after the value")]
    TrailingBytes(usize),
    #[error("indefinite-length item (not allowed in DAG-CBOR)")]
    IndefiniteLength,
    #[error("integer or length not in its shortest encoding")]
    NonMinimalInteger,
    #[error("reserved additional information value {0}")]
    ReservedInfo(u8),
    #[error("floats are not supported")]
    Float,
    #[error("unsupported simple value {0}")]
    UnsupportedSimple(u8),
    #[error("unsupported tag {0} (only 42 = CID is allowed)")]
    UnsupportedTag(u64),
    #[error("map key is not a text string")]
    NonTextKey,
    #[error("map keys not in canonical order or duplicated")]
    UnsortedKeys,
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid CID link")]
    InvalidCid,
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Encode `value` canonically. Map entries are sorted; if a map holds the same key twice,
/// the later entry wins (as when inserting into a map), so the output stays valid DAG-CBOR.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Encode `value` canonically, appending to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Unsigned(n) => write_head(MAJOR_UNSIGNED, *n, out),
        Value::Negative(n) => write_head(MAJOR_NEGATIVE, *n, out),
        Value::Bytes(b) => {
            write_head(MAJOR_BYTES, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            write_head(MAJOR_TEXT, s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            write_head(MAJOR_ARRAY, items.len() as u64, out);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            let sorted = canonical_entries(entries);
            write_head(MAJOR_MAP, sorted.len() as u64, out);
            for (key, value) in sorted {
                write_head(MAJOR_TEXT, key.len() as u64, out);
                out.extend_from_slice(key.as_bytes());
                encode_into(value, out);
            }
        }
        Value::Link(cid) => {
            write_head(MAJOR_TAG, CID_TAG, out);
            let cid_bytes = cid.to_bytes();
            // DAG-CBOR prefixes the binary CID with the multibase "identity" byte 0x00.
            write_head(MAJOR_BYTES, cid_bytes.len() as u64 + 1, out);
            out.push(0x00);
            out.extend_from_slice(&cid_bytes);
        }
        Value::Bool(false) => out.push(MAJOR_SIMPLE << 5 | SIMPLE_FALSE),
        Value::Bool(true) => out.push(MAJOR_SIMPLE << 5 | SIMPLE_TRUE),
        Value::Null => out.push(MAJOR_SIMPLE << 5 | SIMPLE_NULL),
    }
}

/// DAG-CBOR's map key order: shorter keys first, then bytewise.
fn canonical_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The entries of a map in canonical order, later duplicates replacing earlier ones.
fn canonical_entries(entries: &[(String, Value)]) -> Vec<(&str, &Value)> {
    let mut sorted: Vec<(usize, &str, &Value)> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (i, k.as_str(), v))
        .collect();
    // Sort by key, then by position, so the last occurrence of a key comes last.
    sorted.sort_by(|a, b| canonical_key_order(a.1, b.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<(&str, &Value)> = Vec::with_capacity(sorted.len());
    for (_, key, value) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == key => *last = (key, value),
            _ => out.push((key, value)),
        }
    }
    out
}

/// Write a major type and its argument in the shortest form.
fn write_head(major: u8, arg: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.push(m | 24);
        out.push(arg as u8);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Decode exactly one canonical DAG-CBOR value that spans all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    let mut reader = Reader { input, pos: 0 };
    let value = reader.value(0)?;
    let rest = input.len() - reader.pos;
    if rest != 0 {
        return Err(CborError::TrailingBytes(rest));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        if n > self.remaining() {
            return Err(CborError::Truncated);
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    /// Read an item head: (major type, additional info, argument). The argument is only
    /// meaningful for info < 28; the caller handles major type 7 separately.
    fn head(&mut self) -> Result<(u8, u8, u64), CborError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        // Major type 7 carries float bits, not integers: minimality does not apply.
        let check = major != MAJOR_SIMPLE;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if check && v < 24 {
                    return Err(CborError::NonMinimalInteger);
                }
                v
            }
            25 => {
                let v = u64::from(u16::from_be_bytes(self.array()?));
                if check && v <= u64::from(u8::MAX) {
                    return Err(CborError::NonMinimalInteger);
                }
                v
            }
            26 => {
                let v = u64::from(u32::from_be_bytes(self.array()?));
                if check && v <= u64::from(u16::MAX) {
                    return Err(CborError::NonMinimalInteger);
                }
                v
            }
            27 => {
                let v = u64::from_be_bytes(self.array()?);
                if check && v <= u64::from(u32::MAX) {
                    return Err(CborError::NonMinimalInteger);
                }
                v
            }
            31 => return Err(CborError::IndefiniteLength),
            reserved => return Err(CborError::ReservedInfo(reserved)),
        };
        Ok((major, info, arg))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CborError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A length argument, checked against the remaining input (each item needs at least
    /// `min_item_size` bytes), so no allocation is ever sized by an unchecked claim.
    fn length(&self, arg: u64, min_item_size: usize) -> Result<usize, CborError> {
        let len = usize::try_from(arg).map_err(|_| CborError::Truncated)?;
        if len.saturating_mul(min_item_size) > self.remaining() {
            return Err(CborError::Truncated);
        }
        Ok(len)
    }

    fn text(&mut self, arg: u64) -> Result<String, CborError> {
        let len = self.length(arg, 1)?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CborError::InvalidUtf8)
    }

    fn value(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let (major, info, arg) = self.head()?;
        match major {
            MAJOR_UNSIGNED => Ok(Value::Unsigned(arg)),
            MAJOR_NEGATIVE => Ok(Value::Negative(arg)),
            MAJOR_BYTES => {
                let len = self.length(arg, 1)?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            MAJOR_TEXT => Ok(Value::Text(self.text(arg)?)),
            MAJOR_ARRAY => {
                let len = self.length(arg, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            MAJOR_MAP => {
                // A key takes at least one byte and a value at least one more.
                let len = self.length(arg, 2)?;
                let mut entries: Vec<(String, Value)> = Vec::with_capacity(len);
                for _ in 0..len {
                    let (key_major, _, key_arg) = self.head()?;
                    if key_major != MAJOR_TEXT {
                        return Err(CborError::NonTextKey);
                    }
                    let key = self.text(key_arg)?;
                    if let Some((previous, _)) = entries.last() {
                        if canonical_key_order(previous, &key) != std::cmp::Ordering::Less {
                            return Err(CborError::UnsortedKeys);
                        }
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
            MAJOR_TAG => {
                if arg != CID_TAG {
                    return Err(CborError::UnsupportedTag(arg));
                }
                self.link()
            }
            _ => match info {
                SIMPLE_FALSE => Ok(Value::Bool(false)),
                SIMPLE_TRUE => Ok(Value::Bool(true)),
                SIMPLE_NULL => Ok(Value::Null),
                25..=27 => Err(CborError::Float),
                _ => Err(CborError::UnsupportedSimple(arg as u8)),
            },
        }
    }

    /// The content of a tag-42 item: a byte string holding 0x00 ‖ binary CID.
    fn link(&mut self) -> Result<Value, CborError> {
        let (major, _, arg) = self.head()?;
        if major != MAJOR_BYTES {
            return Err(CborError::InvalidCid);
        }
        let len = self.length(arg, 1)?;
        let bytes = self.take(len)?;
        let Some((&0x00, cid_bytes)) = bytes.split_first() else {
            return Err(CborError::InvalidCid);
        };
        let cid = Cid::try_from(cid_bytes).map_err(|_| CborError::InvalidCid)?;
        // Reject trailing bytes and non-minimal varints inside the CID: only the exact
        // canonical bytes round-trip.
        if cid.to_bytes() != cid_bytes {
            return Err(CborError::InvalidCid);
        }
        Ok(Value::Link(cid))
    }
}

#[cfg(test)]
mod tests;
