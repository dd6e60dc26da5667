//! Unsigned LEB128 varints (protobuf, multiformats, bitswap/CAR framing), bounded.

/// Errors of varint decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum VarintError {
    #[error("input ended inside a varint")]
    Truncated,
    #[error("varint longer than 10 bytes or above u64::MAX")]
    Overflow,
}

/// Append `value` as a uvarint.
pub fn write(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `body` behind its uvarint length (how bitswap, CAR and libp2p fetch frame messages).
pub fn length_prefixed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(len(body.len() as u64) + body.len());
    write(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// Number of bytes `write(value)` appends.
pub fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Read a uvarint from the front of `input`; returns the value and the bytes consumed.
pub fn read(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        if i == 9 && part > 1 {
            return Err(VarintError::Overflow);
        }
        value |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if input.len() >= 10 {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_prefixed_puts_the_body_behind_its_length() {
        assert_eq!(length_prefixed(&[1, 2, 3]), [3, 1, 2, 3]);
        let long = length_prefixed(&[7; 300]);
        assert_eq!(long[..2], [0xac, 0x02]);
        assert_eq!(long.len(), 302);
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let mut buf = Vec::new();
            write(v, &mut buf);
            prop_assert_eq!(buf.len(), len(v));
            prop_assert_eq!(read(&buf), Ok((v, buf.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            let _ = read(&bytes);
        }
    }

    #[test]
    fn rejects_overflow_and_truncation() {
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Overflow));
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::Overflow)
        );
    }
}
