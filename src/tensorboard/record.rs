//! TensorBoard's file format, written by hand: TFRecord framing around protobuf `Event`s.
//!
//! A record is the data's length (u64 LE), the masked CRC-32C of those 8 bytes (u32 LE), the
//! data, and the masked CRC-32C of the data (u32 LE); the mask is `((crc >> 15) | (crc << 17)) +
//! 0xa282ead8` (TensorFlow's `core/lib/hash/crc32c.h`). The data is an `Event` of
//! tensorflow/core/util/event.proto, of which three kinds are written:
//!
//! ```text
//! Event { double wall_time = 1; int64 step = 2;
//!         oneof what { string file_version = 3; Summary summary = 5; SessionLog session_log = 6; } }
//! Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//! SessionLog { SessionStatus status = 1; }   (START = 1)
//! ```
//!
//! Why by hand: the one crate that writes this format (`tensorboard-rs` 0.5) panics on a failed
//! write in a thread of its own (a full disk would abort the run instead of exiting 4), and pulls
//! in protobuf 2 and a second `image`; these three messages are a few dozen lines of protobuf.

/// What an event carries.
pub enum Body<'a> {
    /// The first record of every file: `brain.Event:2`.
    FileVersion(&'a str),
    /// Scalars: (tag, value) pairs.
    Scalars(&'a [(String, f32)]),
    /// A (re)start at `step`: TensorBoard's reader drops the events of earlier files from this
    /// step on (what a resumed run redoes).
    SessionStart,
}

/// TensorFlow's masked CRC-32C.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    // ((crc >> 15) | (crc << 17)) is a right rotation by 15.
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// `data` framed as one record.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn bytes_field(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// The protobuf encoding of an `Event`.
pub fn encode_event(wall_time: f64, step: i64, body: &Body) -> Vec<u8> {
    let mut out = Vec::new();
    varint(1 << 3 | 1, &mut out); // wall_time: fixed64
    out.extend_from_slice(&wall_time.to_le_bytes());
    varint(2 << 3, &mut out); // step: varint (two's complement for negatives)
    varint(step as u64, &mut out);
    match body {
        Body::FileVersion(v) => bytes_field(3, v.as_bytes(), &mut out),
        Body::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, value) in *values {
                let mut v = Vec::new();
                bytes_field(1, tag.as_bytes(), &mut v);
                varint(2 << 3 | 5, &mut v); // simple_value: fixed32
                v.extend_from_slice(&value.to_le_bytes());
                bytes_field(1, &v, &mut summary);
            }
            bytes_field(5, &summary, &mut out);
        }
        Body::SessionStart => bytes_field(6, &[1 << 3, 1], &mut out),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32C of "123456789" is 0xe3069283 (the standard check value); masked, worked in
    /// Python: ((0xe3069283 >> 15) | (0xe3069283 << 17)) + 0xa282ead8 mod 2^32 = 0xc78ab0e5.
    #[test]
    fn masked_crc_of_the_check_string() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    /// By hand: field 1 fixed64 (09) 1.5 = 00 00 00 00 00 00 f8 3f; field 2 varint (10) 300 =
    /// ac 02; field 5 (2a) of 10 bytes: value (0a) of 8 bytes: tag (0a 01 'a', 3 bytes),
    /// simple_value (15) 2.0 = 00 00 00 40 (5 bytes).
    #[test]
    fn a_scalar_event_by_hand() {
        let e = encode_event(1.5, 300, &Body::Scalars(&[("a".into(), 2.0)]));
        let want = [
            0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xac, 0x02, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a',
            0x15, 0, 0, 0, 0x40,
        ];
        assert_eq!(e, want);
    }
}
