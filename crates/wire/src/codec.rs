//! A small, bounds-checked binary reader and writer used by the envelope and batch codecs.
//!
//! Every read checks the remaining length first, so a truncated or hostile input becomes a
//! [`DecodeError`], never a panic.

use thiserror::Error;

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input ends early while reading {0}")]
    Truncated(&'static str),
    #[error("bad magic: expected {expected}")]
    BadMagic { expected: &'static str },
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} trailing bytes after the end")]
    Trailing(usize),
}

/// Reads fields from a byte slice, front to back.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A byte string with a 32-bit big-endian length prefix, refused above `max` bytes.
    pub fn bytes32(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field: what, len, max });
        }
        self.take(len, what)
    }

    /// A byte string with an 8-bit length prefix.
    pub fn bytes8(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u8(what)? as usize;
        self.take(len, what)
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Appends fields to a growing buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a 32-bit length prefix and the bytes. The caller keeps lengths under the limits, which
    /// are all far below `u32::MAX`; a longer input is a programmer error.
    pub fn bytes32(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("length checked against a limit below u32::MAX");
        self.u32(len);
        self.raw(bytes);
    }

    /// Writes an 8-bit length prefix and the bytes; callers pass at most 255 bytes.
    pub fn bytes8(&mut self, bytes: &[u8]) {
        let len = u8::try_from(bytes.len()).expect("short field validated by the caller");
        self.u8(len);
        self.raw(bytes);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}
