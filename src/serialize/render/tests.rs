use super::*;
use crate::serialize::out::{Latin1Out, Utf16Out, Utf8Out};
use crate::serialize::tape::utf16;

/// A small document model for building tapes in tests.
#[derive(Clone, Debug)]
enum V {
    Null,
    B(bool),
    N(f64),
    S(Vec<u16>),
    A(Vec<V>),
    O(Vec<(Vec<u16>, V)>),
}

fn s(x: &str) -> V {
    V::S(utf16(x))
}

fn tape_of(v: &V) -> Tape {
    fn go(t: &mut Tape, v: &V) {
        match v {
            V::Null => t.push_null(),
            V::B(b) => t.push_bool(*b),
            V::N(n) => t.push_number(*n),
            V::S(u) => t.push_str(u),
            V::A(xs) => {
                t.begin_array();
                for x in xs {
                    go(t, x);
                }
                t.end_array();
            }
            V::O(ms) => {
                t.begin_object();
                for (k, x) in ms {
                    t.push_key(k);
                    go(t, x);
                }
                t.end_object();
            }
        }
    }
    let mut t = Tape::new();
    go(&mut t, v);
    t.finish();
    t
}

fn to_json(v: &V, cfg: RenderConfig) -> Result<(String, bool)> {
    let t = tape_of(v);
    let r = render(&t, &cfg, Utf8Out::default())?;
    let text = String::from_utf8(r.out.0).expect("utf8");
    assert_eq!(r.utf8_len, text.len(), "utf8 length");
    assert_eq!(r.len, text.encode_utf16().count(), "utf16 length");
    Ok((text, r.truncated))
}

fn compact(v: &V) -> String {
    to_json(v, RenderConfig::default()).unwrap().0
}

fn pretty(v: &V, indent: usize) -> String {
    to_json(
        v,
        RenderConfig {
            indent,
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

fn sample() -> V {
    V::O(vec![
        (
            utf16("a"),
            V::A(vec![V::N(1.0), s("x"), V::Null, V::B(true), V::B(false)]),
        ),
        (utf16("b"), V::O(vec![])),
        (utf16("c"), V::A(vec![])),
        (utf16("d"), V::O(vec![(utf16("e"), V::N(-0.5))])),
    ])
}

#[test]
fn compact_matches_json_stringify() {
    assert_eq!(
        compact(&sample()),
        r#"{"a":[1,"x",null,true,false],"b":{},"c":[],"d":{"e":-0.5}}"#
    );
    assert_eq!(compact(&V::N(1e21)), "1e+21");
    assert_eq!(compact(&s("")), r#""""#);
}

#[test]
fn pretty_matches_json_stringify() {
    assert_eq!(
        pretty(&sample(), 2),
        "{\n  \"a\": [\n    1,\n    \"x\",\n    null,\n    true,\n    false\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": {\n    \"e\": -0.5\n  }\n}"
    );
    assert_eq!(pretty(&V::A(vec![V::A(vec![])]), 4), "[\n    []\n]");
}

#[test]
fn escapes_like_well_formed_json_stringify() {
    let mut u = utf16("q\"b\\\u{1}\u{8}\t\n\u{c}\r\u{1f} é😀");
    u.push(0xD800); // lone high
    u.push(0x41);
    u.push(0xDC00); // lone low
    let got = compact(&V::S(u));
    assert_eq!(
        got,
        "\"q\\\"b\\\\\\u0001\\b\\t\\n\\f\\r\\u001f é😀\\ud800A\\udc00\""
    );
}

#[test]
fn output_sinks_agree() {
    let v = V::A(vec![s("aé"), s("x😀y"), V::N(3.25)]);
    let t = tape_of(&v);
    let cfg = RenderConfig::default();
    let a = render(&t, &cfg, Utf8Out::default()).unwrap();
    let b = render(&t, &cfg, Utf16Out::default()).unwrap();
    let text = String::from_utf8(a.out.0).unwrap();
    assert_eq!(String::from_utf16(&b.out.0).unwrap(), text);
    assert_eq!(a.utf8_len, b.utf8_len);
    let v = V::A(vec![s("aé")]);
    let t = tape_of(&v);
    let c = render(&t, &cfg, Latin1Out::default()).unwrap();
    assert_eq!(c.out.0, vec![b'[', b'"', b'a', 0xE9, b'"', b']']);
    assert_eq!(c.utf8_len, "[\"aé\"]".len());
}

#[test]
fn max_size_without_truncate_fails() {
    let e = to_json(
        &sample(),
        RenderConfig {
            max_size: Some(10),
            truncate: false,
            indent: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, Code::MaxSize);
    let full = compact(&sample());
    let (t, cut) = to_json(
        &sample(),
        RenderConfig {
            max_size: Some(full.len()),
            truncate: false,
            indent: 0,
        },
    )
    .unwrap();
    assert_eq!(t, full);
    assert!(!cut);
}

#[test]
fn truncation_examples() {
    let v = V::A(vec![s("hello world"), V::N(12345.0)]);
    let cut = |n| {
        to_json(
            &v,
            RenderConfig {
                max_size: Some(n),
                truncate: true,
                indent: 0,
            },
        )
        .unwrap()
    };
    assert_eq!(cut(100), (r#"["hello world",12345]"#.to_string(), false));
    assert_eq!(cut(20), (r#"["hello world"]"#.to_string(), true));
    assert_eq!(cut(10), (r#"["hello "]"#.to_string(), true));
    assert_eq!(cut(9), (r#"["hello"]"#.to_string(), true));
    assert_eq!(cut(4), (r#"[""]"#.to_string(), true));
    assert_eq!(cut(3), ("[]".to_string(), true));
    assert_eq!(cut(2), ("[]".to_string(), true));
    let e = to_json(
        &V::N(12345.0),
        RenderConfig {
            max_size: Some(3),
            truncate: true,
            indent: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, Code::InvalidOption);
}

#[test]
fn truncation_never_splits_escapes_or_pairs() {
    let v = s("ab\n😀\u{1}");
    for n in 2..20 {
        let (t, _) = to_json(
            &v,
            RenderConfig {
                max_size: Some(n),
                truncate: true,
                indent: 0,
            },
        )
        .unwrap();
        assert!(t.encode_utf16().count() <= n);
        assert_valid_json(&t).unwrap_or_else(|e| panic!("{n}: {t}: {e}"));
    }
}

/// Tiny deterministic PRNG (xorshift) so the property test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_string(r: &mut Rng) -> Vec<u16> {
    let len = r.below(12);
    (0..len)
        .map(|_| match r.below(8) {
            0 => r.below(0x20) as u16,
            1 => 0xD800 + r.below(0x800) as u16,
            2 => b'"' as u16,
            3 => 0x4E00 + r.below(100) as u16,
            _ => b'a' as u16 + r.below(26) as u16,
        })
        .collect()
}

fn random_value(r: &mut Rng, depth: u32) -> V {
    match r.below(if depth > 3 { 4 } else { 6 }) {
        0 => V::Null,
        1 => V::B(r.below(2) == 0),
        2 => V::N((r.next() as i64 as f64) / 1e6),
        3 => V::S(random_string(r)),
        4 => V::A(
            (0..r.below(5))
                .map(|_| random_value(r, depth + 1))
                .collect(),
        ),
        _ => V::O(
            (0..r.below(5))
                .map(|_| (random_string(r), random_value(r, depth + 1)))
                .collect(),
        ),
    }
}

#[test]
fn truncation_property_valid_json_within_limit_keeping_the_beginning() {
    let mut r = Rng(0x9E3779B97F4A7C15);
    for case in 0..400 {
        let v = V::A(vec![random_value(&mut r, 0), random_value(&mut r, 0)]);
        for indent in [0, 2] {
            let full = pretty(&v, indent);
            let full_len = full.encode_utf16().count();
            assert_valid_json(&full).unwrap();
            for n in 2..full_len + 2 {
                let cfg = RenderConfig {
                    indent,
                    max_size: Some(n),
                    truncate: true,
                };
                let (t, cut) = to_json(&v, cfg).unwrap();
                let len = t.encode_utf16().count();
                assert!(len <= n, "case {case} n {n}: {len} > {n}: {t}");
                assert_eq!(cut, n < full_len, "case {case} n {n}");
                if !cut {
                    assert_eq!(t, full);
                }
                assert_valid_json(&t)
                    .unwrap_or_else(|e| panic!("case {case} n {n}: invalid JSON {t:?}: {e}"));
            }
        }
    }
}

/// JSON grammar check as JSON.parse applies it (lone surrogate escapes allowed, which
/// serde_json refuses).
fn assert_valid_json(text: &str) -> std::result::Result<(), String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\t' | b'\r') {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> std::result::Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", c as char, self.i))
            }
        }
        fn string(&mut self) -> std::result::Result<(), String> {
            self.eat(b'"')?;
            loop {
                match self.b.get(self.i) {
                    None => return Err("unterminated string".into()),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(());
                    }
                    Some(b'\\') => match self.b.get(self.i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                        Some(b'u') => {
                            let h = self.b.get(self.i + 2..self.i + 6).ok_or("short \\u")?;
                            if !h.iter().all(|c| c.is_ascii_hexdigit()) {
                                return Err("bad \\u".into());
                            }
                            self.i += 6;
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    },
                    Some(c) if *c < 0x20 => return Err("control char in string".into()),
                    Some(_) => self.i += 1,
                }
            }
        }
        fn value(&mut self) -> std::result::Result<(), String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.ws();
                        self.string()?;
                        self.eat(b':')?;
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(());
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => self.string(),
                _ => {
                    let rest = &self.b[self.i..];
                    for lit in [&b"null"[..], b"true", b"false"] {
                        if rest.starts_with(lit) {
                            self.i += lit.len();
                            return Ok(());
                        }
                    }
                    let start = self.i;
                    while self.i < self.b.len()
                        && matches!(
                            self.b[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    let num =
                        std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
                    num.parse::<f64>()
                        .map(|_| ())
                        .map_err(|_| format!("bad number {num:?}"))
                }
            }
        }
    }
    let mut p = P {
        b: text.as_bytes(),
        i: 0,
    };
    p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing data at {}", p.i));
    }
    Ok(())
}

/// Cuts a tape into segments after every `every` tokens, as the reader does between steps.
fn segments_of(v: &V, every: usize) -> Vec<Tape> {
    let full = tape_of(v);
    let mut t = Tape::new();
    let mut out = Vec::new();
    for (i, tok) in full.tokens.iter().enumerate() {
        match *tok {
            Token::Null => t.push_null(),
            Token::True => t.push_bool(true),
            Token::False => t.push_bool(false),
            Token::Number(n) => t.push_number(n),
            Token::Str(sp) => t.push_str(full.units_of(sp)),
            Token::Key(sp) => t.push_key(full.units_of(sp)),
            Token::ArrayStart => t.begin_array(),
            Token::ArrayEnd => t.end_array(),
            Token::ObjectStart => t.begin_object(),
            Token::ObjectEnd => t.end_object(),
        }
        if (i + 1) % every == 0 {
            out.push(t.take_segment());
        }
    }
    out.push(t.take_segment());
    out
}

#[test]
fn segmented_rendering_equals_whole_rendering() {
    let mut r = Rng(0xDEADBEEF);
    for case in 0..200 {
        let v = V::A((0..4).map(|_| random_value(&mut r, 0)).collect());
        for indent in [0, 3] {
            let whole = pretty(&v, indent);
            let full_len = whole.encode_utf16().count();
            for every in [1, 2, 5] {
                for max in [None, Some(full_len / 2 + 2), Some(full_len + 5)] {
                    let cfg = RenderConfig {
                        indent,
                        max_size: max,
                        truncate: true,
                    };
                    let mut rd = Renderer::new(&cfg, Utf8Out::default());
                    for seg in segments_of(&v, every) {
                        rd.feed(&seg).unwrap();
                    }
                    let got = rd.finish(true).unwrap();
                    let (want, cut) = to_json(&v, cfg).unwrap();
                    assert_eq!(
                        String::from_utf8(got.out.0).unwrap(),
                        want,
                        "case {case} every {every}"
                    );
                    assert_eq!(got.truncated, cut);
                }
            }
        }
    }
}

#[test]
fn long_string_read_in_pieces_spans_segments() {
    let mut t = Tape::new();
    t.begin_object();
    t.push_key(&utf16("k"));
    t.begin_str();
    t.extend_str(&utf16("hello "));
    let s1 = t.take_segment();
    t.extend_str(&utf16("wörld"));
    let s2 = t.take_segment();
    t.extend_str(&utf16("😀"));
    t.end_str();
    t.end_object();
    t.finish();
    let s3 = t.take_segment();
    let mut rd = Renderer::new(&RenderConfig::default(), Utf16Out::default());
    for s in [&s1, &s2, &s3] {
        rd.feed(s).unwrap();
    }
    let got = rd.finish(true).unwrap();
    assert_eq!(
        String::from_utf16(&got.out.0).unwrap(),
        "{\"k\":\"hello wörld😀\"}"
    );
    assert!(s3.max_unit >= 0xD800 && s1.max_unit < 0x80);
}
