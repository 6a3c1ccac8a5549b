//! Engine comparison for the token counter: tiktoken-rs vs GitHub's `bpe` / `bpe-openai`
//! on the same mixed text. Not part of `npm test`; run `node benchmark/tokens.mjs` once (it
//! writes the text to `benchmark/.tmp/corpus-1mb-typical.txt`), then
//! `cargo bench --bench tokens_engines`.
//! Prints load times (first use of each table), MB/s per engine and encoding, and whether
//! the engines' counts agree (whole text and per 4 KB piece).

use std::time::{Duration, Instant};

fn best_of<F: FnMut() -> usize>(runs: usize, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let t = Instant::now();
        out = std::hint::black_box(f());
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "benchmark/.tmp/corpus-1mb-typical.txt".into());
    let text = std::fs::read_to_string(&path)
        .expect("corpus file (run `node benchmark/tokens.mjs` first)");
    let bytes = text.len();
    println!("corpus: {path}, {bytes} bytes");

    // First use (table load) of each engine and encoding.
    let t = Instant::now();
    let bpe_cl = bpe_openai::cl100k_base();
    println!("load bpe-openai cl100k_base: {:?}", t.elapsed());
    let t = Instant::now();
    let bpe_o2 = bpe_openai::o200k_base();
    println!("load bpe-openai o200k_base: {:?}", t.elapsed());
    let mut tk = Vec::new();
    for (name, f) in [
        (
            "cl100k_base",
            tiktoken_rs::cl100k_base_singleton as fn() -> &'static tiktoken_rs::CoreBPE,
        ),
        ("o200k_base", tiktoken_rs::o200k_base_singleton),
        ("p50k_base", tiktoken_rs::p50k_base_singleton),
        ("r50k_base", tiktoken_rs::r50k_base_singleton),
    ] {
        let t = Instant::now();
        let e = f();
        println!("load tiktoken-rs {name}: {:?}", t.elapsed());
        tk.push((name, e));
    }

    // Agreement.
    let chunks = pieces(&text, 4096);
    for (name, bpe) in [("cl100k_base", bpe_cl), ("o200k_base", bpe_o2)] {
        let tik = tk.iter().find(|(n, _)| *n == name).expect("engine").1;
        let whole = (bpe.count(text.as_str()), tik.encode_ordinary(&text).len());
        let bad = chunks
            .iter()
            .filter(|c| bpe.count(**c) != tik.encode_ordinary(c).len())
            .count();
        println!(
            "{name}: whole text bpe-openai {} vs tiktoken-rs {}; 4 KB pieces differing: {bad} of {}",
            whole.0,
            whole.1,
            chunks.len()
        );
    }

    // Throughput on the whole text (best of 5 runs).
    for (name, bpe) in [("cl100k_base", bpe_cl), ("o200k_base", bpe_o2)] {
        let (d, n) = best_of(5, || bpe.count(text.as_str()));
        println!(
            "bpe-openai  {name}: {:.1} MB/s ({n} tokens, {:?})",
            mbps(bytes, d),
            d
        );
    }
    for (name, e) in &tk {
        let (d, n) = best_of(5, || e.encode_ordinary(&text).len());
        println!(
            "tiktoken-rs {name}: {:.1} MB/s ({n} tokens, {:?})",
            mbps(bytes, d),
            d
        );
    }

    // This crate's `count_tokens` (the chosen engine per encoding, one thread) and
    // `count_tokens_parallel` (cut at safe points, all CPUs).
    println!(
        "available_parallelism: {:?}",
        std::thread::available_parallelism().map(|n| n.get())
    );
    // How much parallel capacity the machine has for this work: two threads each counting
    // the whole text at once, against one thread doing it once.
    {
        let tok = bpe_cl;
        let (one, _) = best_of(3, || tok.count(text.as_str()));
        let (two, _) = best_of(3, || {
            std::thread::scope(|s| {
                let h = s.spawn(|| tok.count(text.as_str()));
                tok.count(text.as_str()) + h.join().expect("join")
            })
        });
        println!("scaling: 1 thread x 1 text {one:?}; 2 threads x 1 text each {two:?} (1.0 = perfect scaling: {:.2})", two.as_secs_f64() / one.as_secs_f64());
    }
    for enc in agent_core_native::tokens::Encoding::ALL {
        agent_core_native::tokens::warm(enc);
        let (d, n) = best_of(5, || agent_core_native::tokens::count_tokens(&text, enc));
        println!(
            "count_tokens (parallel) {enc}: {:.1} MB/s ({n} tokens, {:?})",
            mbps(bytes, d),
            d
        );
    }

    // The `bpe` crate on r50k/p50k tables, built at run time from tiktoken-rs's ranks: how
    // long the build takes and how fast it counts (the pre-tokenizer is r50k's regex with the
    // same look-ahead emulation bpe-openai uses).
    for (name, tik) in tk.iter().filter(|(n, _)| n.ends_with("50k_base")) {
        // Ordinary ranks only: 50256 is the special <|endoftext|> (as in build.rs).
        let last = if *name == "r50k_base" { 50255 } else { 50280 };
        let dict: Vec<Vec<u8>> = (0..=last)
            .filter(|&r| r != 50256)
            .map(|r| tik.decode_bytes(&[r]).expect("rank"))
            .collect();
        let t = Instant::now();
        let built = std::panic::catch_unwind(|| {
            bpe_openai::byte_pair_encoding::BytePairEncoding::from_dictionary(
                dict.clone(),
                Some(17846336922010275747),
            )
        });
        let Ok(bpe) = built else {
            println!("bpe {name}: build failed (hash collision?)");
            continue;
        };
        println!("bpe {name}: built from dictionary in {:?}", t.elapsed());
        let pat1 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+$";
        let tok = bpe_openai::Tokenizer::new_lookahead(
            bpe,
            &[(pat1, false), ("\\s+\\s", true), ("\\s+", false)],
            false,
        )
        .expect("regex");
        let bad = chunks
            .iter()
            .filter(|c| tok.count(**c) != tik.encode_ordinary(c).len())
            .count();
        let (d, n) = best_of(5, || tok.count(text.as_str()));
        println!(
            "bpe (runtime-built) {name}: {:.1} MB/s ({n} tokens; tiktoken-rs {}); 4 KB pieces differing: {bad}",
            mbps(bytes, d),
            tik.encode_ordinary(&text).len()
        );
    }

    // Worst cases: long single pieces.
    for (label, s) in [
        ("1 MB of 'a'", "a".repeat(1 << 20)),
        ("1 MB of spaces", " ".repeat(1 << 20)),
        ("1 MB of digits", "1234567890".repeat(1 << 17)),
    ] {
        let t = Instant::now();
        let n = bpe_cl.count(s.as_str());
        println!(
            "worst case {label}: bpe-openai cl100k {n} tokens in {:?}",
            t.elapsed()
        );
        for (name, e) in &tk {
            let t = Instant::now();
            let r = std::panic::catch_unwind(|| e.encode_ordinary(&s).len());
            println!(
                "worst case {label}: tiktoken-rs {name} {r:?} in {:?}",
                t.elapsed()
            );
        }
    }
}
