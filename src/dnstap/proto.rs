//! A span-preserving walk over protobuf wire format: each field of a
//! message with its exact byte range, so that untouched fields are copied
//! as they were (unknown fields, order, non-minimal varints included).
//! Keys, varints and unknown-field skipping use `prost::encoding`.

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

/// One field of a message, as found in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field number.
    pub num: u32,
    /// Wire type.
    pub wt: WireType,
    /// The key and, for length-delimited fields, the length prefix.
    pub head: &'a [u8],
    /// The value: the bytes of a length-delimited field, the encoded
    /// varint or fixed-width value otherwise.
    pub value: &'a [u8],
    /// Offset of the field's first byte in the walked buffer.
    pub offset: usize,
}

impl Field<'_> {
    /// The whole field as encoded.
    pub fn raw_len(&self) -> usize {
        self.head.len() + self.value.len()
    }

    /// The value of a varint field.
    pub fn varint(&self) -> Option<u64> {
        if self.wt != WireType::Varint {
            return None;
        }
        let mut b = self.value;
        decode_varint(&mut b).ok()
    }

    /// The length of the key alone.
    pub fn key_len(&self) -> usize {
        let mut b = self.head;
        let before = b.len();
        let _ = decode_key(&mut b);
        before - b.len()
    }
}

/// Why a message could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Offset of the bad field in the walked buffer.
    pub offset: usize,
    /// What is wrong.
    pub msg: String,
}

/// The fields of one message, in order.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Walk the fields of `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> Fields<'a> {
    fn step(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let all = self.buf.get(start..).unwrap_or_default();
        let bad = |msg: String| WireError { offset: start, msg };
        let mut cur = all;
        let (num, wt) = decode_key(&mut cur).map_err(|e| bad(format!("bad field key: {e}")))?;
        let key_end = all.len() - cur.len();
        let (head_len, total) = match wt {
            WireType::Varint => {
                decode_varint(&mut cur)
                    .map_err(|e| bad(format!("field {num}: bad varint: {e}")))?;
                (key_end, all.len() - cur.len())
            }
            WireType::ThirtyTwoBit | WireType::SixtyFourBit => {
                let n = if wt == WireType::ThirtyTwoBit { 4 } else { 8 };
                if cur.len() < n {
                    return Err(bad(format!("field {num}: fixed-width value cut short")));
                }
                (key_end, key_end + n)
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut cur)
                    .map_err(|e| bad(format!("field {num}: bad length: {e}")))?;
                let head = all.len() - cur.len();
                if len > cur.len() as u64 {
                    return Err(bad(format!(
                        "field {num}: length {len} runs past the end of its message ({} bytes left)",
                        cur.len()
                    )));
                }
                (head, head + len as usize)
            }
            WireType::StartGroup => {
                skip_field(wt, num, &mut cur, DecodeContext::default())
                    .map_err(|e| bad(format!("field {num}: bad group: {e}")))?;
                (key_end, all.len() - cur.len())
            }
            WireType::EndGroup => return Err(bad(format!("field {num}: unexpected end of group"))),
        };
        self.pos = start + total;
        Ok(Field {
            num,
            wt,
            head: &all[..head_len],
            value: &all[head_len..total],
            offset: start,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.step();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Append a length-delimited field: the original key bytes of `f`, a new
/// length prefix, and `value`. When the length is unchanged the original
/// prefix is kept byte for byte.
pub fn put_bytes_field(out: &mut Vec<u8>, f: &Field<'_>, value: &[u8]) {
    if value.len() == f.value.len() {
        out.extend_from_slice(f.head);
    } else {
        out.extend_from_slice(&f.head[..f.key_len()]);
        prost::encoding::encode_varint(value.len() as u64, out);
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_wire_type_with_spans() {
        // 1: varint 150 (non-minimal 3-byte form), 2: bytes "hi",
        // 3: fixed32, 4: fixed64, 5: group holding 1: varint 1.
        let b: Vec<u8> = [
            &[0x08, 0x96, 0x81, 0x00][..],
            &[0x12, 0x02, b'h', b'i'],
            &[0x1d, 1, 2, 3, 4],
            &[0x21, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0x2b, 0x08, 0x01, 0x2c],
        ]
        .concat();
        let fs: Vec<_> = fields(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(fs.len(), 5);
        assert_eq!(fs[0].varint(), Some(150));
        assert_eq!(fs[0].raw_len(), 4);
        assert_eq!(fs[1].value, b"hi");
        assert_eq!(fs[1].head, &[0x12, 0x02]);
        assert_eq!(fs[2].value, &[1, 2, 3, 4]);
        assert_eq!(fs[3].offset, 13);
        assert_eq!(fs[4].raw_len(), 4);
        let total: usize = fs.iter().map(|f| f.raw_len()).sum();
        assert_eq!(total, b.len());
    }

    #[test]
    fn rejects_damage() {
        for b in [
            &[0x12, 0x05, b'h'][..],
            &[0x08, 0x80],
            &[0x1d, 1, 2],
            &[0x0c],
            &[0x00, 0x01],
            &[0x2b, 0x08, 0x01],
            &[0x0f],
        ] {
            let r: Result<Vec<_>, _> = fields(b).collect();
            assert!(r.is_err(), "{b:?}");
        }
    }

    #[test]
    fn put_bytes_field_reencodes_only_the_length() {
        let b = [0x0a, 0x03, 1, 2, 3];
        let f = fields(&b).next().unwrap().unwrap();
        let mut out = Vec::new();
        put_bytes_field(&mut out, &f, &[9, 9, 9]);
        assert_eq!(out, [0x0a, 0x03, 9, 9, 9]);
        out.clear();
        put_bytes_field(&mut out, &f, &[0u8; 200]);
        assert_eq!(&out[..3], &[0x0a, 0xc8, 0x01]);
        assert_eq!(out.len(), 203);
    }
}
