//! WFDB annotation files in MIT format (`.atr` and the like), read and
//! written.
//!
//! The format (WFDB's `annot(5)`): a sequence of 16-bit little-endian
//! words. A word's top 6 bits are a code `A`, its low 10 bits a value `I`.
//! - `A` in 1..=49: an annotation of type `A` at `I` samples after the
//!   previous annotation (the first: after sample 0).
//! - `A` = 59 (SKIP): the next two words hold a 32-bit signed interval,
//!   high word first (each word little-endian), added to the time before
//!   the next annotation; writers use it when a gap is over 1023 samples.
//! - `A` = 60 (NUM), 62 (CHN): `I` is the `num` or `chan` field of this and
//!   every later annotation, until changed.
//! - `A` = 61 (SUB): `I` is the `subtyp` field of the annotation before it.
//! - `A` = 63 (AUX): `I` bytes of auxiliary data follow (a rhythm such as
//!   `(AFIB`, a note), padded to an even count; they belong to the
//!   annotation before.
//! - Word 0 (`A` = 0, `I` = 0) ends the file; a file may also just end.
//!
//! `subtyp`, `chan` and `num` are 8-bit in the WFDB library (the low 8
//! bits of `I`, `subtyp` and `num` signed); read and written that way.
//! Annotation files are small (two bytes a beat), so [`read_annotations`]
//! returns them all; [`AnnotationReader`] streams them for the rest.

use std::io::{self, Read, Write};

use crate::FormatError;

/// Highest annotation type code (`ACMAX`).
const MAX_CODE: u16 = 49;
const SKIP: u16 = 59;
const NUM: u16 = 60;
const SUB: u16 = 61;
const CHN: u16 = 62;
const AUX: u16 = 63;
/// Largest time difference one word holds.
const MAX_DIFF: u64 = 0x3ff;

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Annotation {
    /// Sample index in the record (0: its first sample).
    pub sample: u64,
    /// Type code, 1..=49 (`NORMAL` is 1); see [`symbol`].
    pub code: u8,
    pub subtype: i8,
    pub chan: u8,
    pub num: i8,
    /// Auxiliary bytes, if any (usually ASCII text).
    pub aux: Option<Vec<u8>>,
}

impl Annotation {
    /// A beat of type `code` at `sample`, other fields 0.
    pub fn beat(sample: u64, code: u8) -> Self {
        Annotation {
            sample,
            code,
            ..Annotation::default()
        }
    }

    /// Whether the annotation marks a beat (QRS complex), as
    /// [`is_beat`] says of its code.
    pub fn is_beat(&self) -> bool {
        is_beat(self.code)
    }
}

/// Type code of a normal beat (`NORMAL`, `N`).
pub const NORMAL: u8 = 1;

/// Mnemonics of the type codes 0..=41 (`ecgcodes.h`; `annstr`), `None`
/// for unassigned codes.
const SYMBOLS: [&str; 42] = [
    " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "", "|", "", "s",
    "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@", "x",
    "f", "(", ")", "r",
];

/// The mnemonic of annotation type `code` (`N`, `V`, `+`), if it has one.
pub fn symbol(code: u8) -> Option<&'static str> {
    SYMBOLS
        .get(usize::from(code))
        .copied()
        .filter(|s| !s.is_empty())
}

/// Whether type `code` is a beat: N L R a V F J A S E j / Q B e n r f ?,
/// the codes WFDB's `isqrs` and the MIT-BIH beat tables count.
pub fn is_beat(code: u8) -> bool {
    matches!(code, 1..=13 | 25 | 30 | 34 | 35 | 38 | 41)
}

/// Streams the annotations of an MIT-format annotation file.
#[derive(Debug)]
pub struct AnnotationReader<R> {
    source: R,
    time: u64,
    chan: u8,
    num: i8,
    /// An annotation read, waiting for the SUB, CHN, NUM and AUX words
    /// that may follow it.
    pending: Option<Annotation>,
    /// A SKIP interval to add before the next annotation.
    skip: i64,
    done: bool,
}

impl<R: Read> AnnotationReader<R> {
    pub fn new(source: R) -> Self {
        AnnotationReader {
            source,
            time: 0,
            chan: 0,
            num: 0,
            pending: None,
            skip: 0,
            done: false,
        }
    }

    /// The next word, or `None` at the end of the input.
    fn word(&mut self) -> io::Result<Option<u16>> {
        let mut b = [0u8; 2];
        let mut filled = 0;
        while filled < 2 {
            match self.source.read(&mut b[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the annotation file ends inside a word",
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(u16::from_le_bytes(b)))
    }

    fn next_annotation(&mut self) -> Result<Option<Annotation>, FormatError> {
        loop {
            let Some(w) = self.word()? else {
                self.done = true;
                return Ok(self.pending.take());
            };
            let (a, i) = (w >> 10, w & 0x3ff);
            let bad = |m: String| FormatError::header("annotation file", m);
            match a {
                0 if i == 0 => {
                    self.done = true;
                    return Ok(self.pending.take());
                }
                1..=MAX_CODE => {
                    let time = self
                        .time
                        .checked_add_signed(self.skip)
                        .and_then(|t| t.checked_add(u64::from(i)))
                        .ok_or_else(|| {
                            bad(format!(
                                "a time before 0 or overflowing after sample {}",
                                self.time
                            ))
                        })?;
                    self.skip = 0;
                    self.time = time;
                    let next = Annotation {
                        sample: time,
                        code: a as u8,
                        subtype: 0,
                        chan: self.chan,
                        num: self.num,
                        aux: None,
                    };
                    if let Some(done) = self.pending.replace(next) {
                        return Ok(Some(done));
                    }
                }
                SKIP => {
                    let (Some(hi), Some(lo)) = (self.word()?, self.word()?) else {
                        return Err(bad("the file ends inside a SKIP interval".into()));
                    };
                    self.skip = i64::from(((u32::from(hi) << 16) | u32::from(lo)) as i32);
                }
                NUM => {
                    self.num = i as u8 as i8;
                    if let Some(p) = &mut self.pending {
                        p.num = self.num;
                    }
                }
                CHN => {
                    self.chan = i as u8;
                    if let Some(p) = &mut self.pending {
                        p.chan = self.chan;
                    }
                }
                SUB => {
                    if let Some(p) = &mut self.pending {
                        p.subtype = i as u8 as i8;
                    }
                }
                AUX => {
                    let mut aux = vec![0u8; usize::from(i) + usize::from(i % 2)];
                    self.source.read_exact(&mut aux)?;
                    aux.truncate(usize::from(i));
                    if let Some(p) = &mut self.pending {
                        p.aux = Some(aux);
                    }
                }
                _ => return Err(bad(format!("word {w:#06x}: code {a} is not defined"))),
            }
        }
    }
}

impl<R: Read> Iterator for AnnotationReader<R> {
    type Item = Result<Annotation, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return self.pending.take().map(Ok);
        }
        match self.next_annotation() {
            Ok(a) => a.map(Ok),
            Err(e) => {
                self.done = true;
                self.pending = None;
                Some(Err(e))
            }
        }
    }
}

/// Every annotation of an MIT-format annotation file, in file order.
pub fn read_annotations(source: impl Read) -> Result<Vec<Annotation>, FormatError> {
    AnnotationReader::new(source).collect()
}

/// Writes `annotations` (in time order) in MIT format, as WFDB's `putann`
/// does: a SKIP before a gap over 1023 samples, SUB, CHN, NUM and AUX words
/// only where needed, and the end word.
pub fn write_annotations(
    mut out: impl Write,
    annotations: &[Annotation],
) -> Result<(), FormatError> {
    let mut buf = Vec::with_capacity(annotations.len() * 2 + 2);
    let word = |buf: &mut Vec<u8>, a: u16, i: u16| {
        buf.extend_from_slice(&((a << 10) | (i & 0x3ff)).to_le_bytes())
    };
    let (mut time, mut chan, mut num) = (0u64, 0u8, 0i8);
    for (k, ann) in annotations.iter().enumerate() {
        if !(1..=MAX_CODE).contains(&u16::from(ann.code)) {
            return Err(FormatError::Unsupported(format!(
                "annotation {k}: type code {} is not 1 to {MAX_CODE}",
                ann.code
            )));
        }
        let diff = i64::try_from(ann.sample)
            .ok()
            .and_then(|s| s.checked_sub(time as i64))
            .filter(|d| i32::try_from(*d).is_ok())
            .ok_or_else(|| {
                FormatError::Unsupported(format!(
                    "annotation {k} at sample {}: more than 2^31 samples from the previous one",
                    ann.sample
                ))
            })?;
        if diff < 0 || diff as u64 > MAX_DIFF {
            let d = diff as i32 as u32;
            word(&mut buf, SKIP, 0);
            buf.extend_from_slice(&((d >> 16) as u16).to_le_bytes());
            buf.extend_from_slice(&(d as u16).to_le_bytes());
            word(&mut buf, u16::from(ann.code), 0);
        } else {
            word(&mut buf, u16::from(ann.code), diff as u16);
        }
        time = ann.sample;
        if ann.subtype != 0 {
            word(&mut buf, SUB, u16::from(ann.subtype as u8));
        }
        if ann.chan != chan {
            word(&mut buf, CHN, u16::from(ann.chan));
            chan = ann.chan;
        }
        if ann.num != num {
            word(&mut buf, NUM, u16::from(ann.num as u8));
            num = ann.num;
        }
        if let Some(aux) = &ann.aux {
            let len = u16::try_from(aux.len())
                .ok()
                .filter(|&l| u64::from(l) <= MAX_DIFF)
                .ok_or_else(|| {
                    FormatError::Unsupported(format!(
                        "annotation {k}: {} aux bytes, at most 1023",
                        aux.len()
                    ))
                })?;
            word(&mut buf, AUX, len);
            buf.extend_from_slice(aux);
            if len % 2 == 1 {
                buf.push(0);
            }
        }
    }
    word(&mut buf, 0, 0);
    out.write_all(&buf)?;
    Ok(())
}

/// Writes beats (sample indices, increasing) as normal beats (`N`).
pub fn write_beats(out: impl Write, beats: &[u64]) -> Result<(), FormatError> {
    let annotations: Vec<Annotation> = beats.iter().map(|&s| Annotation::beat(s, NORMAL)).collect();
    write_annotations(out, &annotations)
}

#[cfg(test)]
mod tests;
