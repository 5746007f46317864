use super::*;

fn words(ws: &[u16]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn word(a: u16, i: u16) -> u16 {
    (a << 10) | i
}

#[test]
fn reads_times_as_differences() {
    let file = words(&[word(1, 77), word(1, 293), word(5, 1023), 0]);
    let anns = read_annotations(&file[..]).unwrap();
    let samples: Vec<u64> = anns.iter().map(|a| a.sample).collect();
    assert_eq!(samples, [77, 370, 1393]);
    assert_eq!(anns[2].code, 5);
    assert_eq!(symbol(anns[2].code), Some("V"));
}

#[test]
fn skip_carries_long_and_negative_gaps() {
    // SKIP 100,000 (0x0001_86a0: high word first), then an annotation.
    let file = words(&[word(1, 10), word(SKIP, 0), 0x0001, 0x86a0, word(1, 0), 0]);
    let anns = read_annotations(&file[..]).unwrap();
    assert_eq!(anns[1].sample, 100_010);
    // A negative skip goes back in time.
    let back = (-5i32) as u32;
    let file = words(&[
        word(1, 10),
        word(SKIP, 0),
        (back >> 16) as u16,
        back as u16,
        word(28, 0),
    ]);
    let anns = read_annotations(&file[..]).unwrap();
    assert_eq!(anns[1].sample, 5);
}

#[test]
fn modifiers_belong_to_the_annotation_before_them() {
    let file = words(&[
        word(28, 5),
        word(AUX, 5),
        u16::from_le_bytes(*b"(N"),
        u16::from_le_bytes(*b"OR"),
        u16::from_le_bytes([b'X', 0]),
        word(1, 3),
        word(SUB, 0x3ff),
        word(CHN, 1),
        word(NUM, 2),
        word(1, 3),
        0,
    ]);
    let anns = read_annotations(&file[..]).unwrap();
    assert_eq!(anns.len(), 3);
    assert_eq!(anns[0].aux.as_deref(), Some(&b"(NORX"[..]));
    assert_eq!((anns[1].subtype, anns[1].chan, anns[1].num), (-1, 1, 2));
    assert_eq!(anns[1].aux, None);
    // CHN and NUM carry on; SUB does not.
    assert_eq!((anns[2].subtype, anns[2].chan, anns[2].num), (0, 1, 2));
    assert_eq!(anns[2].sample, 11);
}

#[test]
fn a_file_may_end_without_the_end_word() {
    let file = words(&[word(1, 1), word(1, 1)]);
    assert_eq!(read_annotations(&file[..]).unwrap().len(), 2);
    assert!(read_annotations(&file[..3]).is_err(), "half a word");
    assert!(read_annotations(&words(&[word(SKIP, 0), 1])[..]).is_err());
    assert!(read_annotations(&words(&[word(50, 0)])[..]).is_err());
}

#[test]
fn written_annotations_read_back_equal() {
    let anns = vec![
        Annotation::beat(0, NORMAL),
        Annotation {
            sample: 1500,
            code: 28,
            aux: Some(b"(AFIB".to_vec()),
            ..Annotation::default()
        },
        Annotation {
            sample: 1500,
            code: 5,
            subtype: -3,
            chan: 1,
            num: -1,
            aux: Some(b"odd".to_vec()),
        },
        Annotation::beat(10_000_000, 12),
        Annotation::beat(9_999_000, 1),
    ];
    let mut bytes = Vec::new();
    write_annotations(&mut bytes, &anns).unwrap();
    assert_eq!(read_annotations(&bytes[..]).unwrap(), anns);
}

#[test]
fn beats_are_written_as_normal_beats() {
    let beats = [77, 370, 662, 5000, 5001];
    let mut bytes = Vec::new();
    write_beats(&mut bytes, &beats).unwrap();
    let back = read_annotations(&bytes[..]).unwrap();
    assert!(back.iter().all(|a| a.code == NORMAL && a.is_beat()));
    let samples: Vec<u64> = back.iter().map(|a| a.sample).collect();
    assert_eq!(samples, beats);
    assert_eq!(&bytes[..2], &word(1, 77).to_le_bytes());
}

#[test]
fn codes_outside_the_table_are_refused() {
    let mut out = Vec::new();
    assert!(write_annotations(&mut out, &[Annotation::beat(1, 0)]).is_err());
    assert!(write_annotations(&mut out, &[Annotation::beat(1, 50)]).is_err());
}
