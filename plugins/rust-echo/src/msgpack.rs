//! The few msgpack encodings the echo result needs (msgpack.org spec:
//! map, str and uint formats), so the crate needs no msgpack crate.

/// Appends the header of a map with `len` key/value pairs.
pub fn map_header(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a UTF-8 string.
pub fn str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= u8::MAX as usize {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// Appends an unsigned integer in its shortest form.
pub fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u8::MAX as u64 {
        out.push(0xcc);
        out.push(v as u8);
    } else if v <= u16::MAX as u64 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u32::MAX as u64 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// msgpack nil, for an empty payload.
pub const NIL: u8 = 0xc0;

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn uint_takes_the_shortest_form_at_every_boundary() {
        assert_eq!(encoded(|o| uint(o, 0)), [0x00]);
        assert_eq!(encoded(|o| uint(o, 127)), [0x7f]);
        assert_eq!(encoded(|o| uint(o, 128)), [0xcc, 0x80]);
        assert_eq!(encoded(|o| uint(o, 255)), [0xcc, 0xff]);
        assert_eq!(encoded(|o| uint(o, 256)), [0xcd, 0x01, 0x00]);
        assert_eq!(encoded(|o| uint(o, 65_535)), [0xcd, 0xff, 0xff]);
        assert_eq!(encoded(|o| uint(o, 65_536)), [0xce, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(
            encoded(|o| uint(o, u32::MAX as u64)),
            [0xce, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            encoded(|o| uint(o, u32::MAX as u64 + 1)),
            [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn str_header_grows_with_the_length() {
        assert_eq!(encoded(|o| str(o, "")), [0xa0]);
        assert_eq!(encoded(|o| str(o, "ab")), [0xa2, b'a', b'b']);
        let s31 = "x".repeat(31);
        assert_eq!(encoded(|o| str(o, &s31))[0], 0xbf);
        let s32 = "x".repeat(32);
        assert_eq!(encoded(|o| str(o, &s32))[..2], [0xd9, 32]);
        let s256 = "x".repeat(256);
        assert_eq!(encoded(|o| str(o, &s256))[..3], [0xda, 0x01, 0x00]);
        let s65536 = "x".repeat(65_536);
        let e = encoded(|o| str(o, &s65536));
        assert_eq!(e[..5], [0xdb, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(e.len(), 5 + 65_536);
    }

    #[test]
    fn map_header_grows_with_the_length() {
        assert_eq!(encoded(|o| map_header(o, 2)), [0x82]);
        assert_eq!(encoded(|o| map_header(o, 15)), [0x8f]);
        assert_eq!(encoded(|o| map_header(o, 16)), [0xde, 0x00, 0x10]);
        assert_eq!(
            encoded(|o| map_header(o, 65_536)),
            [0xdf, 0x00, 0x01, 0x00, 0x00]
        );
    }
}
